"""The audit log: every action, chained by hash per origin node so tampering shows.

Each ``audit.recorded`` event is kept twice: its payload in the event log (``events``, what
replicates) and a row in the ``audit`` table with its predecessor's hash and its own. ``verify``
recomputes every chain from the event log, compares it with the table, and checks this node's
chain against its signed head (``store/audit_head.py``).
"""

from __future__ import annotations

from typing import Any

import msgspec

from appliance.core import events as ev
from appliance.core.hlc import physical_ms
from appliance.store.apply import audit_hash
from appliance.store.audit_head import AuditHead, HeadUnreadable
from appliance.store.db import Connection
from appliance.store.log import epoch_of


class AuditRecord(ev.AuditRecorded, kw_only=True):
    """An ``audit.recorded`` event as stored: the record, where and when it was logged, its hash."""

    origin: str
    seq: int
    at_ms: int
    hash: str


class BrokenRecord(msgspec.Struct, frozen=True, kw_only=True):
    """Where a chain breaks first: the record's origin node and sequence number, and why."""

    origin: str
    seq: int
    reason: str


class Verification(msgspec.Struct, kw_only=True):
    ok: bool
    records: int
    problems: list[str]
    first: BrokenRecord | None = None
    head_seq: int = 0  # the newest record of this node that the signed head vouches for; 0 if none


_COLUMNS = "origin, seq, hlc, actor, action, target, detail, ip, before, after, prev_hash, hash"
_FIELDS = ("actor", "action", "target", "detail", "ip", "before", "after")


def recent(conn: Connection, limit: int = 100) -> list[AuditRecord]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY hlc DESC LIMIT ?", (limit,)).fetchall()
    return [AuditRecord(origin=r[0], seq=r[1], at_ms=physical_ms(r[2]), actor=r[3], action=r[4], target=r[5],
                        detail=r[6], ip=r[7], before=r[8], after=r[9], hash=r[11]) for r in rows]


def verify(conn: Connection, head: AuditHead | None = None) -> Verification:
    """Check every audit chain; ``head`` adds the check of this node's chain against its signed head.

    Detected, each at the record where it shows: a record edited in the table or in the event
    log (they disagree, or the hash does not match), a record missing from one of them, a record
    deleted from both (its successor's predecessor hash no longer matches), the newest records
    deleted (the signed head names a later record than the newest present), a chain rewritten
    after the head (the head's record has another hash), and a forged or damaged head.
    """
    events = {(r[0], r[1]): r for r in conn.execute(
        "SELECT origin, seq, hlc, payload FROM events WHERE type = 'audit.recorded'")}
    table = {(r[0], r[1]): r for r in conn.execute(f"SELECT {_COLUMNS} FROM audit")}
    broken: list[BrokenRecord] = []
    # (origin, epoch) -> hash the next record must name as its predecessor: each epoch of an
    # origin (store/log.py) is a chain of its own, so one restored from backup verifies too.
    previous: dict[tuple[str, int], str] = {}
    hashes: dict[tuple[str, int], str] = {}
    for key in sorted(events.keys() | table.keys()):
        origin, seq = key
        stream = (origin, epoch_of(seq))
        reason, previous[stream] = _check(previous.get(stream, ""), events.get(key), table.get(key))
        hashes[key] = previous[stream]
        if reason:
            broken.append(BrokenRecord(origin=origin, seq=seq, reason=reason))
    head_seq = 0
    if head is not None:
        found, head_seq = _check_head(head, {seq: h for (o, seq), h in hashes.items() if o == head.origin}, table)
        broken.extend(found)
    broken.sort(key=lambda b: (b.origin, b.seq))
    problems = [f"{b.origin[:12]}#{b.seq}: {b.reason}" for b in broken]
    return Verification(ok=not broken, records=len(events.keys() | table.keys()), problems=problems,
                        first=broken[0] if broken else None, head_seq=head_seq)


def _check(prev: str, event_row: Any, row: Any) -> tuple[str, str]:
    """(what is wrong with one record, or ""; the hash its successor must name)."""
    if event_row is None:
        return "in the audit table but not in the event log (deleted there, or inserted here)", row[11]
    origin, seq, hlc, payload = event_row
    try:
        record = ev.decode_payload(payload)
    except msgspec.DecodeError:
        record = None
    if not isinstance(record, ev.AuditRecorded):
        return "its event in the log is not a readable audit record (edited)", row[11] if row else prev
    expected = audit_hash(prev, ev.Event(origin, seq, hlc, "audit.recorded", b""), record)
    if row is None:
        return "in the event log but missing from the audit table (deleted there)", expected
    stored = dict(zip(_FIELDS, row[3:10], strict=True))
    if row[2] != hlc or any(stored[f] != getattr(record, f) for f in _FIELDS):
        as_stored = ev.AuditRecorded(**stored)
        table_consistent = audit_hash(row[10], ev.Event(origin, seq, row[2], "audit.recorded", b""),
                                      as_stored) == row[11]
        if expected == row[11]:
            where = "the audit table"  # the stored hash still covers the logged event
        elif table_consistent:
            where = "the event log, or re-hashed in the audit table"
        else:
            where = "both the event log and the audit table"
        return f"the event log and the audit table disagree (edited in {where})", row[11]
    if row[10] != prev:
        return "its predecessor does not match (a record before it was deleted or altered)", row[11]
    if row[11] != expected:
        return "its hash does not match its content (edited)", row[11]
    return "", expected


def _check_head(head: AuditHead, hashes: dict[int, str], table: dict[tuple[str, int], Any]
                ) -> tuple[list[BrokenRecord], int]:
    """Problems with this node's chain against its signed head, and the sequence number it vouches for."""
    newest = max(hashes, default=0)

    def broken(seq: int, reason: str) -> tuple[list[BrokenRecord], int]:
        return [BrokenRecord(origin=head.origin, seq=seq, reason=reason)], 0

    try:
        checkpoint = head.read()
    except HeadUnreadable as exc:
        return broken(newest, f"the signed audit head is forged or damaged ({exc})")
    if checkpoint is None:
        if newest:
            return broken(newest, f"no signed audit head ({head.path} is missing)")
        return [], 0
    if checkpoint.origin != head.origin:
        return broken(newest, f"the signed audit head belongs to another node ({checkpoint.origin[:12]})")
    if newest < checkpoint.seq:
        return broken(checkpoint.seq, f"the newest records were deleted: the signed head ends the chain at"
                                      f" #{checkpoint.seq}, the newest record present is #{newest}")
    row = table.get((head.origin, checkpoint.seq))
    if checkpoint.seq not in hashes or row is None:
        return broken(checkpoint.seq, "the record the signed head names was deleted")
    if hashes[checkpoint.seq] != checkpoint.hash or row[11] != checkpoint.hash:
        return broken(checkpoint.seq, "the chain was rewritten: this record differs from the signed head")
    return [], checkpoint.seq
