"""Privacy operations: a visitor's data exported or erased, and retention; each one audited.

Erasure and retention only append tombstones (``privacy.erased`` events); applying one deletes
the rows and redacts the logged events, here and on every paired node (see
``store/privacy.py``). Retention erases in batches of ``batch`` subjects per transaction, so
the writer is never held long and visitors' writes go in between.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from functools import partial

import msgspec

from appliance.core import events as ev
from appliance.core.errors import NotFound
from appliance.store import Connection, Store, WriteTxn, privacy
from appliance.store.privacy import Erasure

log = logging.getLogger("appliance.privacy")
DAY_MS = 86_400_000
_json = msgspec.json.Encoder()


class VisitorErasure(msgspec.Struct, kw_only=True):
    visitor_id: str
    erased: Erasure
    already_erased: bool = False  # nothing was left: an earlier erasure took it all


class Retention(msgspec.Struct, kw_only=True):
    retention_days: int
    cutoff_ms: int
    dry_run: bool = False
    erased: Erasure = msgspec.field(default_factory=Erasure)
    expired_cache_entries: int = 0


class Privacy:
    def __init__(self, store: Store, *, retention_days: int, batch: int = 50,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self.retention_days = retention_days
        self._batch = batch
        self._clock = clock

    # -- export -----------------------------------------------------------------------

    async def export(self, visitor_id: str, *, actor: str, ip: str = "") -> AsyncIterator[bytes]:
        """Everything stored about the visitor, as JSON in pieces (one conversation at a time).

        Checked and audited before the first byte: an unknown visitor is NotFound.
        """
        found = await self._store.read(lambda c: privacy.footprint(c, visitor_id))
        if found.empty:
            raise NotFound(f"visitor {visitor_id} not found" + (" (erased)" if found.erased_ms else ""))
        detail = (f"{len(found.conversations)} conversations, {found.messages} messages, {found.tickets} tickets,"
                  f" {found.attachments} attachments")
        await self._store.append(ev.AuditRecorded(actor=actor, action="visitor.export", target=visitor_id,
                                                  detail=detail, ip=ip))
        return self._pieces(visitor_id, found.conversations)

    async def _pieces(self, visitor_id: str, conversation_ids: list[str]) -> AsyncIterator[bytes]:
        yield b'{"visitor_id":' + _json.encode(visitor_id) + b',"exported_ms":' + _json.encode(
            int(self._clock() * 1000)) + b',"conversations":['
        first = True
        for cid in conversation_ids:
            conversation = await self._store.read(partial(privacy.exported_conversation, conversation_id=cid))
            if conversation is None:  # erased meanwhile
                continue
            yield (b"" if first else b",") + _json.encode(conversation)
            first = False
        tickets = await self._store.read(lambda c: privacy.visitor_tickets(c, visitor_id))
        attachments = await self._store.read(lambda c: privacy.visitor_attachments(c, visitor_id))
        yield b'],"tickets":' + _json.encode(tickets) + b',"attachments":' + _json.encode(attachments) + b"}\n"

    # -- erasure ----------------------------------------------------------------------

    async def visitor_of(self, conversation_id: str) -> str:
        return await self._store.read(lambda c: privacy.conversation_visitor(c, conversation_id))

    async def erase_visitor(self, visitor_id: str, *, actor: str, ip: str = "") -> VisitorErasure:
        """Erase the visitor everywhere; erasing one already erased says so and changes nothing."""
        await self._index_backlog()

        def work(txn: WriteTxn) -> VisitorErasure:
            found = privacy.footprint(txn.conn, visitor_id)
            if found.empty and not found.erased_ms:
                raise NotFound(f"visitor {visitor_id} not found")
            counts = privacy.measure(txn.conn, conversations=found.conversations, visitor_id=visitor_id,
                                     tickets=privacy.visitor_ticket_ids(txn.conn, visitor_id))
            counts.attachments = found.attachments
            if not found.empty:
                txn.append(ev.Erased(kind="visitor", subject_id=visitor_id, reason="erasure"))
            result = VisitorErasure(visitor_id=visitor_id, erased=counts if not found.empty else Erasure(),
                                    already_erased=found.empty)
            txn.append(ev.AuditRecorded(actor=actor, action="visitor.erase", target=visitor_id, ip=ip,
                                        detail="already erased" if found.empty else counts.describe()))
            return result

        result = await self._store.write(work)
        await self._truncate_wal()
        return result

    # -- retention --------------------------------------------------------------------

    async def retention(self, *, dry_run: bool = False, actor: str = "system", ip: str = "",
                        audit_empty: bool = True) -> Retention:
        """Erase conversations (and their traces, tickets, uploads) idle for ``retention_days``, and
        uploads and left messages older than that which nothing shows any more."""
        days = self.retention_days
        now_ms = int(self._clock() * 1000)
        cutoff_ms = now_ms - days * DAY_MS
        report = Retention(retention_days=days, cutoff_ms=cutoff_ms, dry_run=dry_run)
        if days <= 0:
            return report
        before = cutoff_ms << 16  # the hybrid clock of that moment
        if dry_run:
            report.erased = await self._store.read(lambda c: _planned(c, before))
            return report
        await self._index_backlog()
        for kind in ("conversation", "ticket"):
            while True:
                ids, counts = await self._store.write(partial(self._erase_batch, kind=kind, before=before))
                report.erased.add(counts)
                if len(ids) < self._batch:
                    break
        cursor = ""
        while True:
            cursor, counts = await self._store.write(partial(self._erase_uploads, before=before, after=cursor))
            report.erased.add(counts)
            if not cursor:
                break
        report.expired_cache_entries = await self._store.write(
            lambda txn: privacy.purge_expired_replies(txn.conn, now_ms))
        erased = bool(report.erased.conversations or report.erased.tickets or report.erased.attachments)
        if audit_empty or erased:
            await self._store.append(ev.AuditRecorded(
                actor=actor, action="privacy.retention", target=f"{days} days", ip=ip,
                detail=report.erased.describe()))
        if erased:
            await self._truncate_wal()
        return report

    def _erase_batch(self, txn: WriteTxn, kind: str, before: int) -> tuple[list[str], Erasure]:
        if kind == "conversation":
            ids = privacy.stale_conversations(txn.conn, before, self._batch)
            counts = privacy.measure(txn.conn, conversations=ids)
        else:
            ids = privacy.stale_tickets(txn.conn, before, self._batch)
            counts = privacy.measure(txn.conn, tickets=ids)
        for subject_id in ids:
            txn.append(ev.Erased(kind=kind, subject_id=subject_id, reason="retention"))  # type: ignore[arg-type]
        return ids, counts

    def _erase_uploads(self, txn: WriteTxn, before: int, after: str) -> tuple[str, Erasure]:
        ids, cursor = privacy.stale_attachments(txn.conn, before, after, self._batch)
        counts = privacy.measure(txn.conn, attachments=ids)
        for attachment_id in ids:
            txn.append(ev.Erased(kind="attachment", subject_id=attachment_id, reason="retention"))
        return cursor, counts

    async def keep(self, every_s: float = 3600.0) -> None:
        """Run retention now and then every ``every_s`` seconds, until cancelled."""
        while True:
            try:
                report = await self.retention(actor="system", ip="local", audit_empty=False)
                if report.erased.conversations or report.erased.tickets or report.erased.attachments:
                    log.info("retention (%d days) erased %s", report.retention_days, report.erased.describe())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("retention failed; next try in %.0f s", every_s)
            await asyncio.sleep(every_s)

    async def _truncate_wal(self) -> None:
        if not await asyncio.to_thread(privacy.truncate_wal, self._store.path):
            log.info("the write-ahead log was busy; erased pages leave it at a later checkpoint")

    async def _index_backlog(self) -> None:
        """Index, in bounded steps, events logged before the privacy index existed (upgraded nodes)."""
        while not await self._store.write(lambda txn: privacy.index_backlog(txn.conn, 5000)):
            pass


def _planned(conn: Connection, before: int) -> Erasure:
    """What a retention run would erase now (``--dry-run``)."""
    conversations = privacy.stale_conversations(conn, before, -1)
    tickets = privacy.stale_tickets(conn, before, -1)
    attachments: list[str] = []
    cursor = ""
    while True:
        found, cursor = privacy.stale_attachments(conn, before, cursor, 1000)
        attachments += found
        if not cursor:
            break
    return privacy.measure(conn, conversations=conversations, tickets=tickets, attachments=attachments)
