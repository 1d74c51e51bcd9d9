"""Queries of the live desk: conversations, messages, the queue, visitors, traces, tickets.

Functions of a connection (Datasette's "functions of a connection"); the only SQL about
conversations outside ``apply.py``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from appliance.core import permissions
from appliance.core.desk import (
    ConversationSummary,
    InboxFilter,
    Rating,
    Ticket,
    TraceAttempt,
    TraceChunk,
    TraceSummary,
    VisitorPanel,
)
from appliance.core.errors import NotFound
from appliance.core.events import VisitorProfile
from appliance.core.hlc import physical_ms
from appliance.core.ports import ChatMessage
from appliance.core.types import Citation, Message, Trace
from appliance.store.db import Connection

_citations = msgspec.msgpack.Decoder(list[Citation])
_strings = msgspec.msgpack.Decoder(list[str])
_trace = msgspec.msgpack.Decoder(Trace)
_profile = msgspec.msgpack.Decoder(VisitorProfile)

_COLUMNS = ("c.id, c.visitor_id, c.subject, c.profile, c.owner, c.assignee, c.status, c.language, c.last_text,"
            " c.last_role, c.started_hlc, c.updated_hlc, c.queued_hlc, c.last_visitor_hlc")


class ConversationRow(msgspec.Struct, kw_only=True):
    """A conversation as stored, for the desk's decisions (owner checks, queue position)."""

    id: str
    visitor_id: str
    owner: str
    assignee: str
    status: str
    language: str
    queued_hlc: int
    rating: int | None


def row(conn: Connection, conversation_id: str) -> ConversationRow:
    found = conn.execute(
        "SELECT id, visitor_id, owner, assignee, status, language, queued_hlc, rating FROM conversations"
        " WHERE id = ?", (conversation_id,)).fetchone()
    if found is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return ConversationRow(id=found[0], visitor_id=found[1], owner=found[2], assignee=found[3], status=found[4],
                           language=found[5], queued_hlc=found[6], rating=found[7])


def visitor_row(conn: Connection, conversation_id: str, visitor_id: str) -> ConversationRow:
    """The conversation if it is this visitor's; another visitor's looks exactly like a missing one."""
    try:
        found = row(conn, conversation_id)
    except NotFound:
        found = None
    if found is None or found.visitor_id != visitor_id:
        raise NotFound(f"conversation {conversation_id} not found")
    return found


def open_conversation(conn: Connection, visitor_id: str) -> str | None:
    """The visitor's newest conversation that is still open, if any."""
    found = conn.execute("SELECT id FROM conversations WHERE visitor_id = ? AND status = 'open'"
                         " ORDER BY started_hlc DESC LIMIT 1", (visitor_id,)).fetchone()
    return str(found[0]) if found else None


def _summary(r: tuple, unread: int = 0, position: int = 0) -> ConversationSummary:  # type: ignore[type-arg]
    profile = _profile.decode(r[3]) if r[3] else VisitorProfile()
    return ConversationSummary(
        id=r[0], visitor_id=r[1], subject=r[2], visitor_name=profile.name, owner=r[4], assignee=r[5], status=r[6],
        language=r[7], last_text=r[8], last_role=r[9], started_ms=physical_ms(r[10]), updated_ms=physical_ms(r[11]),
        unread=unread, position=position,
    )


def position(conn: Connection, conversation_id: str) -> int:
    """1-based place in the line of unassigned waiting conversations; 0 when not waiting."""
    found = conn.execute("SELECT queued_hlc, owner, assignee, status FROM conversations WHERE id = ?",
                         (conversation_id,)).fetchone()
    if found is None or found[1] != "queue" or found[2] or found[3] != "open":
        return 0
    ahead: int = conn.execute(
        "SELECT count(*) FROM conversations WHERE status = 'open' AND owner = 'queue' AND assignee = ''"
        " AND queued_hlc <= ?", (found[0],)).fetchone()[0]
    return ahead


def summary(conn: Connection, conversation_id: str, user: str = "") -> ConversationSummary:
    found = conn.execute(f"SELECT {_COLUMNS} FROM conversations c WHERE c.id = ?", (conversation_id,)).fetchone()
    if found is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return _summary(found, _unread(conn, user, conversation_id) if user else 0, position(conn, conversation_id))


def _unread(conn: Connection, user: str, conversation_id: str) -> int:
    count: int = conn.execute(
        "SELECT count(*) FROM messages WHERE conversation_id = ? AND role = 'visitor'"
        " AND hlc > coalesce((SELECT hlc FROM reads WHERE user_name = ? AND conversation_id = ?), 0)",
        (conversation_id, user, conversation_id)).fetchone()[0]
    return count


_FILTERS: dict[str, str] = {
    "mine": "c.status = 'open' AND (c.owner = :me_owner OR (c.owner = 'queue' AND c.assignee = :me))",
    "queue": "c.status = 'open' AND c.owner = 'queue'",
    "bot": "c.status = 'open' AND c.owner = 'bot'",
    "open": "c.status = 'open'",
    "resolved": "c.status = 'closed'",
}
# What an agent (not a supervisor) may see at all: see permissions.may_see.
_AGENT_SCOPE = "(c.owner = :me_owner OR (c.owner IN ('bot', 'queue') AND c.assignee IN ('', :me)))"


def inbox(conn: Connection, which: InboxFilter, user: str, role: str, *, limit: int = 50,
          before: int | None = None) -> tuple[list[ConversationSummary], int | None]:
    """A page of the inbox, newest activity first; the cursor is the last row's ``updated_hlc``."""
    where = [_FILTERS[which]]
    if not permissions.allowed(role, "desk.view_all"):
        where.append(_AGENT_SCOPE)
    if before is not None:
        where.append("c.updated_hlc < :before")
    params = {"me": user, "me_owner": f"agent:{user}", "before": before, "limit": limit}
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM conversations c WHERE {' AND '.join(where)} ORDER BY c.updated_hlc DESC LIMIT :limit",
        params).fetchall()
    result = [_summary(r, _unread(conn, user, r[0]), position(conn, r[0]) if r[4] == "queue" else 0) for r in rows]
    cursor = rows[-1][11] if len(rows) == limit else None
    return result, cursor


def counts(conn: Connection, user: str, role: str) -> dict[str, int]:
    scope = "" if permissions.allowed(role, "desk.view_all") else f" AND {_AGENT_SCOPE}"
    params = {"me": user, "me_owner": f"agent:{user}"}
    return {name: conn.execute(f"SELECT count(*) FROM conversations c WHERE {where}{scope}", params).fetchone()[0]
            for name, where in _FILTERS.items()}


def messages(conn: Connection, conversation_id: str, *, for_visitor: bool = False) -> list[Message]:
    hidden = " AND role != 'note'" if for_visitor else ""
    rows = conn.execute(
        "SELECT id, role, text, source, citations, trace_id, author, attachments, hlc FROM messages"
        f" WHERE conversation_id = ?{hidden} ORDER BY hlc", (conversation_id,)).fetchall()
    return [
        Message(id=r[0], conversation_id=conversation_id, role=r[1], text=r[2], source=r[3],
                citations=_citations.decode(r[4]) if r[4] else [], trace_id=r[5], author=r[6],
                attachments=_strings.decode(r[7]) if r[7] else [], created_ms=physical_ms(r[8]))
        for r in rows
    ]


def bot_history(conn: Connection, conversation_id: str, turns: int) -> tuple[list[ChatMessage], int]:
    """The recent exchange as the model sees it (no notes, no system notices) and the current
    streak of bot turns that found nothing."""
    rows = conn.execute(
        "SELECT role, text, source FROM messages WHERE conversation_id = ? AND role IN ('visitor', 'bot', 'agent')"
        " ORDER BY hlc DESC LIMIT ?", (conversation_id, turns * 2)).fetchall()
    rows.reverse()
    history: list[ChatMessage] = []
    for role, text, _ in rows:
        speaker: Literal["user", "assistant"] = "user" if role == "visitor" else "assistant"
        history.append(ChatMessage(role=speaker, content=text))
    streak = 0
    for role, _, source in reversed(rows):
        if role == "bot":
            if source != "no_answer":
                break
            streak += 1
    return history, streak


def trace(conn: Connection, trace_id: str) -> Trace:
    found = conn.execute("SELECT body FROM traces WHERE id = ?", (trace_id,)).fetchone()
    if found is None:
        raise NotFound(f"trace {trace_id} not found")
    return _trace.decode(found[0])


def traces_for(conn: Connection, conversation_id: str) -> dict[str, Trace]:
    rows = conn.execute("SELECT id, body FROM traces WHERE conversation_id = ?", (conversation_id,)).fetchall()
    return {r[0]: _trace.decode(r[1]) for r in rows}


def trace_summary(t: Trace) -> TraceSummary:
    return TraceSummary(
        trace_id=t.trace_id, intent=t.intent, intent_confidence=t.intent_confidence, cache=t.cache,
        rules=t.rules_fired, chunks=[TraceChunk(document=c.document, section=c.section, score=round(c.score, 4))
                                     for c in t.chunks[:5]],
        model=t.route, arm=t.arm, source=t.source, fallbacks=t.fallbacks,
        attempts=[TraceAttempt(provider=a.provider, status=a.status, error_kind=a.error_kind,
                               latency_ms=round(a.latency_ms, 1)) for a in t.attempts],
        handoff_reason=t.handoff_reason, superseded_by=t.superseded_by, total_ms=t.timings_ms.get("total", 0.0),
    )


def visitor_panel(conn: Connection, conversation_id: str) -> tuple[VisitorPanel, Rating | None]:
    found = conn.execute("SELECT visitor_id, profile, language, rating, rating_comment FROM conversations"
                         " WHERE id = ?", (conversation_id,)).fetchone()
    if found is None:
        raise NotFound(f"conversation {conversation_id} not found")
    past = conn.execute(
        f"SELECT {_COLUMNS} FROM conversations c WHERE c.visitor_id = ? AND c.id != ? ORDER BY c.started_hlc DESC"
        " LIMIT 20", (found[0], conversation_id)).fetchall()
    panel = VisitorPanel(visitor_id=found[0], profile=_profile.decode(found[1]) if found[1] else VisitorProfile(),
                         language=found[2], past=[_summary(r) for r in past])
    rating = Rating(score=found[3], comment=found[4]) if found[3] is not None else None
    return panel, rating


def waiting(conn: Connection) -> list[str]:
    """Unassigned waiting conversations, first come first served."""
    rows = conn.execute("SELECT id FROM conversations WHERE status = 'open' AND owner = 'queue' AND assignee = ''"
                        " ORDER BY queued_hlc").fetchall()
    return [r[0] for r in rows]


def waiting_ids(conn: Connection) -> list[str]:
    rows = conn.execute("SELECT id FROM conversations WHERE status = 'open' AND owner = 'queue'").fetchall()
    return [r[0] for r in rows]


class DeskFigures(msgspec.Struct, kw_only=True):
    """What ``/metrics`` shows of the desk: open conversations by owner (bot, queue, agent), the
    HLC of the longest-waiting queued one (0: none), and left messages not yet answered."""

    open_by_owner: dict[str, int]
    oldest_queued_hlc: int
    tickets_open: int


def figures(conn: Connection) -> DeskFigures:
    rows = conn.execute(
        "SELECT CASE WHEN owner LIKE 'agent:%' THEN 'agent' ELSE owner END AS who, count(*)"
        " FROM conversations WHERE status = 'open' GROUP BY who").fetchall()
    oldest = conn.execute("SELECT min(queued_hlc) FROM conversations WHERE status = 'open' AND owner = 'queue'"
                          " AND queued_hlc > 0").fetchone()[0]
    tickets_open = conn.execute("SELECT count(*) FROM tickets WHERE status = 'open'").fetchone()[0]
    return DeskFigures(open_by_owner={"bot": 0, "queue": 0, "agent": 0} | {r[0]: r[1] for r in rows},
                       oldest_queued_hlc=oldest or 0, tickets_open=tickets_open)


def loads(conn: Connection) -> dict[str, int]:
    """Open conversations per agent: owned, or assigned and waiting for them to take it."""
    rows = conn.execute(
        "SELECT CASE WHEN owner LIKE 'agent:%' THEN substr(owner, 7) ELSE assignee END AS who, count(*)"
        " FROM conversations WHERE status = 'open' AND (owner LIKE 'agent:%' OR (owner = 'queue' AND assignee != ''))"
        " GROUP BY who").fetchall()
    return {r[0]: r[1] for r in rows}


def mark_read(conn: Connection, user: str, conversation_id: str) -> None:
    conn.execute(
        "INSERT INTO reads (user_name, conversation_id, hlc) VALUES (?, ?, (SELECT coalesce(max(hlc), 0)"
        " FROM messages WHERE conversation_id = ?))"
        " ON CONFLICT (user_name, conversation_id) DO UPDATE SET hlc = excluded.hlc",
        (user, conversation_id, conversation_id))


def attachment_stored(conn: Connection, attachment_id: str) -> bool:
    return conn.execute("SELECT 1 FROM attachments WHERE id = ?", (attachment_id,)).fetchone() is not None


def attachment(conn: Connection, attachment_id: str) -> tuple[str, bytes, str] | None:
    found = conn.execute("SELECT media_type, data, visitor_id FROM attachments WHERE id = ?",
                         (attachment_id,)).fetchone()
    return (found[0], found[1], found[2]) if found else None


def attachment_holders(conn: Connection, attachment_id: str) -> list[tuple[str, str]]:
    """(owner, assignee) of every conversation a message sent the attachment in."""
    rows = conn.execute(
        "SELECT DISTINCT c.owner, c.assignee FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE m.attachments IS NOT NULL AND length(m.attachments) > 1 AND instr(m.attachments, ?) > 0",
        (attachment_id.encode(),)).fetchall()
    return [(r[0], r[1]) for r in rows]


def visitor_attachment(conn: Connection, attachment_id: str, visitor_id: str) -> tuple[str, bytes] | None:
    found = conn.execute(
        "SELECT a.media_type, a.data FROM attachments a JOIN attachment_visitors v ON v.attachment_id = a.id"
        " WHERE a.id = ? AND v.visitor_id = ?", (attachment_id, visitor_id)).fetchone()
    return (found[0], found[1]) if found else None


def rated_reply(conn: Connection, message_id: str, visitor_id: str) -> tuple[str, bytes | None, str | None] | None:
    """A visitor's bot reply: its conversation, trace body and current thumbs rating."""
    found = conn.execute(
        "SELECT m.conversation_id, t.body, f.rating FROM messages m"
        " JOIN conversations c ON c.id = m.conversation_id LEFT JOIN traces t ON t.id = m.trace_id"
        " LEFT JOIN feedback f ON f.message_id = m.id"
        " WHERE m.id = ? AND m.role = 'bot' AND c.visitor_id = ?", (message_id, visitor_id)).fetchone()
    return (found[0], found[1], found[2]) if found else None


def decode_trace(body: bytes) -> Trace:
    return _trace.decode(body)


_TICKET = "id, name, contact, message, language, conversation_id, status, answer, answered_by, hlc, visitor_id"


def _ticket(r: tuple) -> Ticket:  # type: ignore[type-arg]
    return Ticket(id=r[0], name=r[1], contact=r[2], message=r[3], language=r[4], conversation_id=r[5], status=r[6],
                  answer=r[7], answered_by=r[8], created_ms=physical_ms(r[9]))


def tickets(conn: Connection, status: str | None, limit: int = 100,
            before: int | None = None) -> tuple[list[Ticket], int | None]:
    """A page of tickets, newest first; the cursor is the last row's ``hlc``."""
    where = ["(:status IS NULL OR status = :status)", "(:before IS NULL OR hlc < :before)"]
    rows = conn.execute(f"SELECT {_TICKET} FROM tickets WHERE {' AND '.join(where)} ORDER BY hlc DESC"
                        " LIMIT :limit", {"status": status, "before": before, "limit": limit}).fetchall()
    return [_ticket(r) for r in rows], (rows[-1][9] if len(rows) == limit else None)


def ticket(conn: Connection, ticket_id: str) -> Ticket:
    found = conn.execute(f"SELECT {_TICKET} FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
    if found is None:
        raise NotFound(f"ticket {ticket_id} not found")
    return _ticket(found)


def ticket_visitor(conn: Connection, ticket_id: str) -> str:
    found = conn.execute("SELECT visitor_id FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
    if found is None:
        raise NotFound(f"ticket {ticket_id} not found")
    visitor: str = found[0]
    return visitor


def setting(conn: Connection, key: str) -> bytes | None:
    found = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
    return bytes(found[0]) if found else None
