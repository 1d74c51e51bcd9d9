"""One authenticated connection with a peer: exchanging marks, batches and acks.

Invariants:
- Each side ships every origin's events in seq order, starting above the peer's mark for that
  origin, so the receiver holds every origin without gaps (see ``store/log.py``).
- A batch is applied in one write transaction with the events it carries; its ack is sent
  only after that transaction committed, so an acked event is durable on the receiver.
- At most ``window`` batches are unacked at a time: memory on both sides stays bounded however
  large the backlog, and a slow receiver slows the sender instead of filling buffers.
- Marks are sent on connect and every ``anti_entropy_s``: they double as keepalive, tell the
  status what the peer holds, and make the session restart from what the peer really has if it
  ever reports less than it acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from appliance.core import events as ev
from appliance.core.config import SyncConfig
from appliance.store import Store, WriteTxn
from appliance.store.conflicts import record_collision
from appliance.store.log import Stream, begin_epoch_above, epoch_of, events_after, marks
from appliance.sync import wire

log = logging.getLogger("appliance.sync")


@dataclass
class PeerLink:
    """What this node knows about one paired peer: the status ``sync status`` shows."""

    node_id: str
    name: str = ""
    address: str = ""
    connected: bool = False
    remote: str = ""
    connected_since_ms: int = 0
    last_error: str = ""
    last_error_ms: int = 0
    notice: str = ""  # something an operator should know: the peer restored an old backup
    peer_marks: dict[Stream, int] = field(default_factory=dict)
    events_in: int = 0
    events_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    collisions: int = 0
    session: Session | None = None

    def failed(self, error: str) -> None:
        self.last_error = error
        self.last_error_ms = time.time_ns() // 1_000_000


class SessionClosed(Exception):
    """The peer closed the stream or broke the protocol."""


class Session:
    def __init__(self, store: Store, link: PeerLink, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 *, dialer: str, config: SyncConfig) -> None:
        self.store = store
        self.link = link
        self.dialer = dialer  # node id of the side that opened the connection
        self._reader = reader
        self._writer = writer
        self._frames = wire.FrameBuffer()
        self._config = config
        self._cursor: dict[Stream, int] = {}  # per stream: the highest seq sent to the peer
        self._acked: dict[Stream, int] = {}
        self._have_marks = asyncio.Event()
        self._wake = asyncio.Event()
        self._in_flight = 0
        self._pending: list[wire.AnyFrame] = []
        self._task: asyncio.Task[None] | None = None
        self.on_close: Callable[[], object] | None = None  # closes the connection under the session
        self.ping: Callable[[], Awaitable[None]] | None = None  # a QUIC ping on that connection
        self.on_applied: Callable[[list[ev.Event]], Awaitable[None]] | None = None  # after a batch is durable
        self._closed = False
        self._own_checked = 0  # the highest own seq the peer reported that was checked for a restore
        self._checks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    async def alive(self, timeout: float) -> bool:
        """Whether the peer still answers on this session's connection."""
        if self.ping is None or self._task is None or self._task.done():
            return False
        try:
            await asyncio.wait_for(self.ping(), timeout)
        except (TimeoutError, ConnectionError):
            return False
        return True

    def close(self) -> None:
        """End the session (a duplicate connection, or the peer was unpaired)."""
        self._closed = True
        if self.on_close is not None:
            self.on_close()
        if self._task is not None:
            self._task.cancel()

    async def run(self) -> None:
        """Exchange events until the connection ends; SessionClosed when :meth:`close` ended it."""
        self._closed = False
        self._task = asyncio.create_task(self._exchange())
        try:
            await self._task
        except asyncio.CancelledError:
            if self._closed and not _cancelling():
                raise SessionClosed("closed") from None
            raise

    async def _exchange(self) -> None:
        self.send(wire.Marks(marks=wire.to_marks(await self.store.read(marks))))
        tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._send_events()),
                 asyncio.create_task(self._exchange_marks())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(BaseException):
                    await task

    def send(self, frame: wire.Frame) -> int:
        data = wire.encode(frame)
        self._writer.write(data)
        return len(data)

    async def next_frame(self) -> wire.AnyFrame:
        while not self._pending:
            data = await self._reader.read(1 << 16)
            if not data:
                raise SessionClosed("the peer closed the connection")
            self.link.bytes_in += len(data)
            try:
                self._pending.extend(self._frames.feed(data))
            except wire.ProtocolError as exc:
                raise SessionClosed(str(exc)) from None
        return self._pending.pop(0)

    async def _receive(self) -> None:
        while True:
            frame = await self.next_frame()
            if isinstance(frame, wire.Marks):
                self._on_marks(wire.from_marks(frame.marks))
            elif isinstance(frame, wire.Batch):
                try:
                    events = wire.batch_events(frame)
                except wire.ProtocolError as exc:
                    raise SessionClosed(str(exc)) from None
                await self._on_batch(events)
            elif isinstance(frame, wire.Ack):
                self._in_flight = max(0, self._in_flight - 1)
                for stream, seq in wire.from_marks(frame.marks).items():
                    self._acked[stream] = max(self._acked.get(stream, 0), seq)
                    self.link.peer_marks[stream] = max(self.link.peer_marks.get(stream, 0), seq)
                self._wake.set()
            elif isinstance(frame, wire.Refused):
                raise SessionClosed(f"refused by the peer: {frame.reason}")

    def _on_marks(self, theirs: dict[Stream, int]) -> None:
        self.link.peer_marks = dict(theirs)
        for stream, seq in theirs.items():
            if seq < self._acked.get(stream, 0):  # the peer lost what it acknowledged: start over from its word
                self._cursor[stream] = seq
                self._acked[stream] = seq
            else:
                self._cursor[stream] = max(self._cursor.get(stream, 0), seq)
        own = max((seq for (origin, _), seq in theirs.items() if origin == self.store.origin), default=0)
        if own > self._own_checked:  # only a higher number than last time can be news
            self._own_checked = own
            check = asyncio.create_task(self._check_own_history(own))
            self._checks.add(check)
            check.add_done_callback(self._checks.discard)
        self._have_marks.set()
        self._wake.set()

    async def _check_own_history(self, theirs: int) -> None:
        """The peer holds events of ours above our own newest: this database was restored from an
        older backup. New local events start a new epoch so they never reuse those numbers, and
        the peer's copies of our lost events come back to us."""
        def bump(txn: WriteTxn) -> int | None:
            floor = begin_epoch_above(txn.conn, txn.origin, theirs)
            if floor is not None:
                txn.next_seq = max(txn.next_seq, floor)
            return floor

        floor = await self.store.write(bump)
        if floor is not None:
            self.link.notice = (f"{self.link.name or self.link.node_id[:12]} holds events of this node up to"
                                f" #{theirs}: this database is older (restored from a backup?); new events"
                                f" start at epoch {epoch_of(floor)}")
            log.error("sync: %s", self.link.notice)

    async def _on_batch(self, events: list[ev.Event]) -> None:
        source = self.link.node_id
        applied, collisions = await self.store.write(lambda txn: receive(txn, events, source))
        self.link.events_in += len(applied)
        self.link.collisions += collisions
        if applied and self.on_applied is not None:
            try:
                await self.on_applied(applied)
            except Exception:
                log.exception("sync: could not show replicated events live")
        upto: dict[Stream, int] = {}
        for event in events:
            stream = (event.origin, epoch_of(event.seq))
            upto[stream] = max(upto.get(stream, 0), event.seq)
        self.link.bytes_out += self.send(wire.Ack(marks=wire.to_marks(upto)))

    async def _exchange_marks(self) -> None:
        while True:
            await asyncio.sleep(self._config.anti_entropy_s)
            self.link.bytes_out += self.send(wire.Marks(marks=wire.to_marks(await self.store.read(marks))))

    async def _send_events(self) -> None:
        await self._have_marks.wait()
        while True:
            if self._in_flight < self._config.window_batches:
                batch = await self.store.read(
                    lambda conn, cursor=dict(self._cursor): next_batch(conn, cursor, self._config))
                if batch:
                    for event in batch:
                        stream = (event.origin, epoch_of(event.seq))
                        self._cursor[stream] = max(self._cursor.get(stream, 0), event.seq)
                    self._in_flight += 1
                    self.link.bytes_out += self.send(wire.batch(batch))
                    self.link.events_out += len(batch)
                    await self._writer.drain()
                    continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)


def _cancelling() -> bool:
    """True when the task running this code is itself being cancelled (not just the session)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def next_batch(conn: Any, cursor: dict[Stream, int], config: SyncConfig) -> list[ev.Event]:
    """The next events the peer lacks, each stream in seq order, bounded in count and bytes."""
    batch: list[ev.Event] = []
    size = 0
    for stream, highest in marks(conn).items():
        above = cursor.get(stream, 0)
        if highest <= above:
            continue
        for event in events_after(conn, stream, above, config.batch_events - len(batch)):
            batch.append(event)
            size += len(event.payload) + 64
            if size >= config.batch_bytes:
                return batch
        if len(batch) >= config.batch_events:
            break
    return batch


def receive(txn: WriteTxn, events: list[ev.Event], source: str) -> tuple[list[ev.Event], int]:
    """Apply a replicated batch in the writer's transaction: (the events new here, collisions)."""
    applied: list[ev.Event] = []
    collisions = 0
    for event in events:
        if event.type in ev.KNOWN_TYPES:
            inserted = txn.insert(event)
        else:  # a type from a newer version: kept in the log (it replicates on), not applied here
            log.warning("sync: event %s/%d of unknown type %r kept unapplied", event.origin[:12], event.seq, event.type)
            inserted = txn.insert(event, materialize=False)
        if inserted:
            applied.append(event)
            continue
        row = txn.conn.execute("SELECT hlc FROM events WHERE origin = ? AND seq = ?",
                               (event.origin, event.seq)).fetchone()
        if row is not None and row[0] != event.hlc:
            record_collision(txn.conn, event, source)
            collisions += 1
    return applied, collisions
