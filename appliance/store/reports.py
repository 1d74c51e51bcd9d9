"""What the reports are computed from (``core/reports.py`` does the arithmetic): one row of facts
per conversation started in a window, and one per traced bot turn in it. Conversations are found
through ``conversations_started`` (migration 12), turns through ``traces_hlc``; only the trace
fields a report needs are decoded."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from appliance.core.hlc import physical_ms
from appliance.core.reports import ANSWERED, HANDOFF_SOURCES, ConversationFacts, TurnFacts
from appliance.store.db import Connection

_HLC_SHIFT = 16  # core/hlc.py: 48 bits of milliseconds above 16 bits of counter


class _TraceTiming(msgspec.Struct):
    timings_ms: dict[str, float] = msgspec.field(default_factory=dict)
    fallbacks: list[str] = msgspec.field(default_factory=list)
    superseded_by: str = ""


_trace = msgspec.msgpack.Decoder(_TraceTiming)
_ANSWERED = ", ".join(f"'{s}'" for s in ANSWERED)
_HANDOFF = ", ".join(f"'{s}'" for s in HANDOFF_SOURCES)


def conversation_facts(conn: Connection, since_ms: int, until_ms: int) -> Iterator[ConversationFacts]:
    rows = conn.execute(
        "SELECT c.id, c.started_hlc, CASE WHEN c.status = 'closed' THEN c.state_hlc END,"
        " c.owner != 'bot', c.rating,"
        f" (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id AND m.role = 'bot'"
        f"   AND m.source IN ({_ANSWERED})),"
        " (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id AND m.role = 'agent'),"
        f" (SELECT min(m.hlc) FROM messages m WHERE m.conversation_id = c.id AND m.source IN ({_HANDOFF}))"
        " FROM conversations c WHERE c.started_hlc >= ? AND c.started_hlc < ?",
        (since_ms << _HLC_SHIFT, until_ms << _HLC_SHIFT))
    for cid, started, closed, human, rating, answers, agent_messages, handoff in rows.fetchall():
        first_agent = None
        if handoff is not None and agent_messages:
            first_agent = conn.execute(
                "SELECT min(hlc) FROM messages WHERE conversation_id = ? AND role = 'agent' AND hlc > ?",
                (cid, handoff)).fetchone()[0]
        yield ConversationFacts(
            started_ms=physical_ms(started), closed_ms=physical_ms(closed) if closed else None,
            human_owner=bool(human), bot_answers=answers, agent_messages=agent_messages,
            handoff_ms=physical_ms(handoff) if handoff is not None else None,
            first_agent_after_handoff_ms=physical_ms(first_agent) if first_agent is not None else None,
            rating=rating)


def turn_facts(conn: Connection, since_ms: int, until_ms: int) -> Iterator[TurnFacts]:
    rows = conn.execute("SELECT hlc, body FROM traces WHERE hlc >= ? AND hlc < ? ORDER BY hlc",
                        (since_ms << _HLC_SHIFT, until_ms << _HLC_SHIFT))
    for hlc, body in rows:
        found = _trace.decode(body)
        if found.superseded_by:
            continue  # a human took over while the bot worked: the visitor never saw this turn
        yield TurnFacts(at_ms=physical_ms(hlc), total_ms=found.timings_ms.get("total", 0.0),
                        fell_back=bool(found.fallbacks))
