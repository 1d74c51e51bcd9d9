"""The audit log: every admin action, chained by hash per origin node so tampering shows."""

from __future__ import annotations

import msgspec

from appliance.core import events as ev
from appliance.core.hlc import physical_ms
from appliance.store import Connection
from appliance.store.apply import audit_hash


class AuditRecord(ev.AuditRecorded, kw_only=True):
    """An ``audit.recorded`` event as stored: the record, where and when it was logged, its hash."""

    origin: str
    seq: int
    at_ms: int
    hash: str


class Verification(msgspec.Struct, kw_only=True):
    ok: bool
    records: int
    problems: list[str]


_COLUMNS = "origin, seq, hlc, actor, action, target, detail, prev_hash, hash"


def recent(conn: Connection, limit: int = 100) -> list[AuditRecord]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY hlc DESC LIMIT ?", (limit,)).fetchall()
    return [AuditRecord(origin=r[0], seq=r[1], at_ms=physical_ms(r[2]), actor=r[3], action=r[4], target=r[5],
                        detail=r[6], hash=r[8]) for r in rows]


def verify(conn: Connection) -> Verification:
    """Recompute every record's hash from its predecessor and its content.

    A record edited in place, deleted from the middle of a chain, or inserted without the right
    predecessor breaks the chain at that point; the problems name origin and sequence number.
    """
    problems: list[str] = []
    count = 0
    previous: dict[str, str] = {}
    for row in conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY origin, seq"):
        origin, seq, hlc, actor, action, target, detail, prev_hash, stored = row
        count += 1
        expected_prev = previous.get(origin, "")
        event = ev.Event(origin, seq, hlc, "audit.recorded", b"")
        payload = ev.AuditRecorded(actor=actor, action=action, target=target, detail=detail)
        if prev_hash != expected_prev:
            problems.append(f"{origin[:12]}#{seq}: chain broken (a record before it was removed or altered)")
        if audit_hash(prev_hash, event, payload) != stored:
            problems.append(f"{origin[:12]}#{seq}: content does not match its hash (edited)")
        previous[origin] = stored
    return Verification(ok=not problems, records=count, problems=problems)
