"""The single writer: one thread, one connection, group commit.

Work items are functions of a :class:`WriteTxn`. The thread takes every item waiting in its
queue (up to ``max_batch``), runs them in one ``BEGIN IMMEDIATE`` transaction, each inside
its own savepoint so a failing item rolls back alone, then commits once and resolves every
item's future. A future resolves only after its transaction is durable, so a caller that got
an answer never loses that write. Sequence numbers are read under the write lock, so other
processes (the CLI) can write to the same file safely.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from appliance.core import events as ev
from appliance.core.hlc import HybridClock
from appliance.store.apply import applied_own, apply
from appliance.store.db import Connection, connect

T = TypeVar("T")
_STOP = object()
log = logging.getLogger("appliance.store")


class WriteTxn:
    """Handed to each work item: append events and query within the writer's transaction."""

    def __init__(self, conn: Connection, origin: str, clock: HybridClock, next_seq: int) -> None:
        self.conn = conn
        self.origin = origin
        self._clock = clock
        self.next_seq = next_seq
        self.audited = False  # appended an audit record of this node's own origin

    def append(self, payload: ev.EventPayload) -> ev.Event:
        event = ev.Event(
            self.origin, self.next_seq, self._clock.now(), ev.event_type(payload), ev.encode_payload(payload)
        )
        if not self.insert(event):
            raise RuntimeError(f"event {event.origin[:12]}…/{event.seq} is already in the log")
        applied_own(self.conn, event, payload)
        self.audited = self.audited or isinstance(payload, ev.AuditRecorded)
        return event

    def insert(self, event: ev.Event, *, materialize: bool = True) -> bool:
        """Append an event (local or replicated) and apply it; False if it was already there.
        ``materialize=False`` only logs it (a replicated event this version cannot read)."""
        cursor = self.conn.execute(
            "INSERT OR IGNORE INTO events (origin, seq, hlc, type, payload) VALUES (?, ?, ?, ?, ?)",
            (event.origin, event.seq, event.hlc, event.type, event.payload),
        )
        if cursor.rowcount == 0:
            return False
        if event.origin == self.origin and event.seq >= self.next_seq:
            self.next_seq = event.seq + 1  # this node's own events, brought back by a peer after a restore
        self._clock.observe(event.hlc)
        if materialize:
            apply(self.conn, event)
        return True


def next_sequence(conn: Connection, origin: str, clock: HybridClock) -> int:
    """The next sequence number of ``origin``'s own events, read under the write lock.

    Never below ``seq_floor`` (the start of a new epoch, set by replication when this node finds
    its peers hold newer events of its own than it does: a restore from an old backup). The
    clock observes the newest own event, which another process (the CLI) may have written."""
    row = conn.execute("SELECT max(seq), hlc FROM events WHERE origin = ?", (origin,)).fetchone()
    if row[1] is not None:
        clock.observe(row[1])
    floor = conn.execute("SELECT value FROM node_state WHERE key = 'seq_floor'").fetchone()
    return max((row[0] or 0) + 1, int(floor[0]) if floor else 0)


class Writer:
    def __init__(
        self, path: Path, origin: str, clock: HybridClock, *, synchronous: str = "FULL", max_batch: int = 512,
        after_audit: Callable[[Connection], object] | None = None,
    ) -> None:
        self._path = path
        self._after_audit = after_audit  # run after a commit that appended own audit records
        self._origin = origin
        self._clock = clock
        self._synchronous = synchronous
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._ready: Future[None] = Future()
        self.transactions = 0
        self.items = 0

    def start(self) -> None:
        self._thread.start()
        self._ready.result()

    def submit(self, work: Callable[[WriteTxn], T]) -> Future[T]:
        future: Future[T] = Future()
        self._queue.put((work, future))
        return future

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        try:
            conn = connect(self._path, synchronous=self._synchronous)
        except BaseException as exc:
            self._ready.set_exception(exc)
            return
        self._ready.set_result(None)
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(item is _STOP for item in batch)
                # A future cancelled before its work began (its waiter went away) is dropped; the
                # others are marked running, so a cancel arriving later cannot fail set_result.
                work = [item for item in batch if item is not _STOP and item[1].set_running_or_notify_cancel()]
                if work:
                    self._commit(conn, work)
                if stop:
                    return
        finally:
            conn.close()

    def _commit(self, conn: Connection, batch: list[tuple[Callable[[WriteTxn], Any], Future[Any]]]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            txn = WriteTxn(conn, self._origin, self._clock, next_sequence(conn, self._origin, self._clock))
            for work, _ in batch:
                seq = txn.next_seq
                conn.execute("SAVEPOINT item")
                try:
                    result = work(txn)
                except BaseException as exc:  # one item's failure must not sink the batch
                    conn.execute("ROLLBACK TO item")
                    conn.execute("RELEASE item")
                    txn.next_seq = seq
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE item")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for _, future in batch:
                future.set_exception(exc)
            return
        if txn.audited and self._after_audit is not None:
            try:
                self._after_audit(conn)  # before the answers: an answered write has its audit anchored
            except Exception:
                log.exception("could not write the audit head")
        self.transactions += 1
        self.items += len(batch)
        for (ok, value), (_, future) in zip(outcomes, batch, strict=True):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
