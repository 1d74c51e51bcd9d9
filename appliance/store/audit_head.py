"""The signed head of this node's audit chain: ``audit.head`` beside the database file.

A hash chain shows a record edited or removed from the middle, but not the newest records
removed: the shortened chain is still a valid chain. So after every committed transaction that
appended audit records of this node's own origin, the writer stores a checkpoint, the origin,
sequence number and hash of the newest own record with an HMAC-SHA256 over them, under a key
kept outside the database (``audit.key``, 32 random bytes, mode 0600, made on first open).
``audit verify`` then knows where the chain must end.

Invariants: the file is replaced atomically (temporary file, fsync, rename, fsync of the
directory); several processes (the server and CLI commands) write it under an ``fcntl.flock``
on ``audit.head.lock``, and a checkpoint never moves back to a lower sequence number. It only
moves forward when the chain still holds the record the current checkpoint names: after the
newest records were removed (or rewritten), the head stays where it was, so the damage keeps
showing instead of being signed over. A missing head is written afresh; a damaged or forged one
is left alone for ``verify`` to report.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec

from appliance.store.db import Connection

HEAD_FILE = "audit.head"
KEY_FILE = "audit.key"
LOCK_FILE = "audit.head.lock"
log = logging.getLogger("appliance.audit")


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    origin: str
    seq: int
    hash: str
    mac: str = ""


_decoder = msgspec.json.Decoder(Checkpoint)


class HeadUnreadable(Exception):
    """``audit.head`` exists but is not a checkpoint signed with this node's key."""


class AuditHead:
    """The checkpoint file of one database, for the node ``origin``."""

    def __init__(self, db_path: Path, origin: str) -> None:
        self.origin = origin
        self.directory = db_path.parent
        self.path = self.directory / HEAD_FILE
        self.key_path = self.directory / KEY_FILE
        self._lock_path = self.directory / LOCK_FILE
        self._key: bytes | None = None

    # -- reading -----------------------------------------------------------------------

    def read(self) -> Checkpoint | None:
        """The stored checkpoint; None when there is none. Raises ``HeadUnreadable`` when the
        file does not decode or its HMAC does not match (forged, or signed with another key)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            checkpoint = _decoder.decode(raw)
        except msgspec.DecodeError as exc:
            raise HeadUnreadable(f"{self.path} is not a checkpoint ({exc})") from None
        if not hmac.compare_digest(checkpoint.mac, self._mac(checkpoint)):
            raise HeadUnreadable(f"{self.path}: the signature does not match (forged, or another key)")
        return checkpoint

    def _mac(self, c: Checkpoint) -> str:
        message = msgspec.json.encode(["audit.head/1", c.origin, c.seq, c.hash])
        return hmac.new(self.key(), message, hashlib.sha256).hexdigest()

    def key(self) -> bytes:
        if self._key is None:
            with self._locked():
                self._key = self._load_or_make_key()
        return self._key

    def _load_or_make_key(self) -> bytes:
        try:
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = self.key_path.read_bytes()
            if len(key) < 32:
                raise HeadUnreadable(f"{self.key_path}: the audit key is too short") from None
            return key
        key = os.urandom(32)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        _fsync_directory(self.directory)
        return key

    # -- writing -----------------------------------------------------------------------

    def advance(self, conn: Connection) -> Checkpoint | None:
        """Sign the newest own audit record as the head, if that moves the head forward along
        the same chain; returns the checkpoint written, or None."""
        self.key()  # before the lock: loading the key takes it too
        with self._locked():
            newest = conn.execute("SELECT seq, hash FROM audit WHERE origin = ? ORDER BY seq DESC LIMIT 1",
                                  (self.origin,)).fetchone()
            if newest is None:
                return None
            try:
                current = self.read()
            except HeadUnreadable as exc:
                log.warning("audit head not moved: %s; run `appliance audit verify`", exc)
                return None
            if current is not None:
                if current.origin != self.origin:
                    log.warning("audit head not moved: %s belongs to node %s", self.path, current.origin[:12])
                    return None
                if current.seq >= newest[0]:
                    return None
                kept = conn.execute("SELECT 1 FROM audit WHERE origin = ? AND seq = ? AND hash = ?",
                                    (self.origin, current.seq, current.hash)).fetchone()
                if kept is None:
                    log.warning("audit head not moved: the record it names (#%d) is gone or changed;"
                                " run `appliance audit verify`", current.seq)
                    return None
            checkpoint = self._signed(newest[0], newest[1])
            self._write(checkpoint)
            return checkpoint

    def _signed(self, seq: int, record_hash: str) -> Checkpoint:
        unsigned = Checkpoint(origin=self.origin, seq=seq, hash=record_hash)
        return Checkpoint(origin=self.origin, seq=seq, hash=record_hash, mac=self._mac(unsigned))

    def _write(self, checkpoint: Checkpoint) -> None:
        temporary = self.path.with_name(f"{HEAD_FILE}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(msgspec.json.encode(checkpoint) + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        _fsync_directory(self.directory)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
