"""SQLite storage: the event log, materialized views, one writer and a read pool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from appliance.core import events as ev
from appliance.core.config import Config
from appliance.core.hlc import HybridClock
from appliance.store.audit_head import AuditHead, HeadUnreadable
from appliance.store.db import Connection, connect
from appliance.store.log import begin_epoch_above, newest_hlc
from appliance.store.migrations import migrate
from appliance.store.reader import ReadPool
from appliance.store.writer import Writer, WriteTxn

__all__ = ["Connection", "Store", "WriteTxn"]

T = TypeVar("T")
log = logging.getLogger("appliance.store")
AUDIT_HEAD_SCHEMA = 6  # the first schema version whose nodes keep audit.head


class Store:
    """One node's database. ``write``/``read`` are awaitable; ``*_sync`` serve the CLI."""

    def __init__(self, path: Path, origin: str, *, read_connections: int = 4, synchronous: str = "FULL",
                 max_batch: int = 512) -> None:
        self.path = path
        self.origin = origin
        self.clock = HybridClock()
        self.audit_head = AuditHead(path, origin)
        self._writer = Writer(path, origin, self.clock, synchronous=synchronous, max_batch=max_batch,
                              after_audit=self.audit_head.advance)
        self._readers = ReadPool(path, read_connections)

    @classmethod
    def open(cls, path: Path, origin: str, **options: int | str) -> Store:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path)
        try:
            before = conn.execute("PRAGMA user_version").fetchone()[0]
            migrate(conn)
            head = AuditHead(path, origin)
            head.key()  # made on first open, outside the database
            if before < AUDIT_HEAD_SCHEMA and not head.path.exists():
                head.advance(conn)  # a node upgraded in place: anchor the chain it has
            newest = newest_hlc(conn)
            _restored_check(conn, head, origin, path)
        finally:
            conn.close()
        store = cls(path, origin, **options)  # type: ignore[arg-type]
        store.clock.observe(newest)  # a change made now is newer than every one already stored
        store._writer.start()
        return store

    @classmethod
    def from_config(cls, config: Config, origin: str) -> Store:
        return cls.open(
            config.resolve(config.store.file), origin, read_connections=config.store.read_connections,
            synchronous=config.store.synchronous, max_batch=config.store.group_commit_max,
        )

    async def write(self, work: Callable[[WriteTxn], T]) -> T:
        return await asyncio.wrap_future(self._writer.submit(work))

    def write_soon(self, work: Callable[[WriteTxn], object]) -> None:
        """Queue a write nobody waits for (derived data such as cache entries): no thread hop awaited."""
        self._writer.submit(work)

    async def append(self, *payloads: ev.EventPayload) -> list[ev.Event]:
        return await self.write(lambda txn: [txn.append(p) for p in payloads])

    async def read(self, work: Callable[[Connection], T]) -> T:
        return await asyncio.wrap_future(self._readers.submit(work))

    def write_sync(self, work: Callable[[WriteTxn], T]) -> T:
        return self._writer.submit(work).result()

    def append_sync(self, *payloads: ev.EventPayload) -> list[ev.Event]:
        return self.write_sync(lambda txn: [txn.append(p) for p in payloads])

    def read_sync(self, work: Callable[[Connection], T]) -> T:
        return self._readers.submit(work).result()

    @property
    def write_stats(self) -> tuple[int, int]:
        """(transactions committed, work items committed) since start: the group-commit ratio."""
        return self._writer.transactions, self._writer.items

    def close(self) -> None:
        self._writer.close()
        self._readers.close()


def _restored_check(conn: Connection, head: AuditHead, origin: str, path: Path) -> None:
    """The audit head (kept outside the database) names an own record the log no longer has:
    the database is an older backup. New events start a new epoch (``store/log.py``)."""
    try:
        checkpoint = head.read()
    except HeadUnreadable:
        return  # `audit verify` reports it
    if checkpoint is None or checkpoint.origin != origin:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        floor = begin_epoch_above(conn, origin, checkpoint.seq)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if floor is not None:
        log.error("%s: the audit head names event #%d of this node, the database ends before it: restored"
                  " from an older backup? New events start at epoch %d; paired peers send the lost ones back",
                  path, checkpoint.seq, floor >> 32)
