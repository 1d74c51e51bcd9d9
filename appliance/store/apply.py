"""``apply(conn, event)``: the one function that turns an event into materialized rows.

Local writes and replicated ones both go through it, inside the transaction that appends the
event, so the log and the views never disagree. Handlers are idempotent per event.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

from appliance.core import events as ev
from appliance.store import conversation_search
from appliance.store.conflicts import record_loser
from appliance.store.db import Connection
from appliance.store.log import EPOCH_BITS, epoch_of

_encode = msgspec.msgpack.encode
Handler = Callable[[Connection, ev.Event, Any], None]
_HANDLERS: dict[type, Handler] = {}


def handles(payload_type: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[payload_type] = fn
        return fn

    return register


Admission = Callable[[Connection, ev.Event, Any], bool]
_ADMISSIONS: list[Admission] = []  # asked before every handler; one saying False drops the event


def admits(fn: Admission) -> Admission:
    """Register a check run before each event is applied (store/privacy.py drops erased subjects)."""
    _ADMISSIONS.append(fn)
    return fn


def apply(conn: Connection, event: ev.Event) -> None:
    payload = ev.decode_payload(event.payload)
    if all(admit(conn, event, payload) for admit in _ADMISSIONS):
        _HANDLERS[type(payload)](conn, event, payload)


_OWN: list[Handler] = []  # run after each event this node appends itself, never for replicated ones


def after_own(fn: Handler) -> Handler:
    """Register a step run in the transaction of each event this node itself appends, after it is
    applied (store/webhooks.py writes the outbox: each node announces only its own events)."""
    _OWN.append(fn)
    return fn


def applied_own(conn: Connection, event: ev.Event, payload: Any) -> None:
    for step in _OWN:
        step(conn, event, payload)


def _conversation(conn: Connection, conversation_id: str) -> None:
    """Make sure the row exists: events of other origins about a conversation can arrive before
    the one that started it, and must not be lost. ``ConversationStarted`` fills in the rest."""
    conn.execute("INSERT OR IGNORE INTO conversations (id, visitor_id, started_hlc, updated_hlc) VALUES (?, '', 0, 0)",
                 (conversation_id,))


# Columns several sites change carry the (hlc, origin) of the change that set them (state_*:
# owner, status, assignee, queue; last_message_*; subject_*, the oldest visitor message; rating_*),
# so the newest change wins in whatever order replicated events arrive, ties broken by origin.

@handles(ev.ConversationStarted)
def _conversation_started(conn: Connection, e: ev.Event, p: ev.ConversationStarted) -> None:
    _conversation(conn, p.conversation_id)
    conn.execute(
        "UPDATE conversations SET visitor_id = ?, channel = ?, started_hlc = ?, updated_hlc = max(updated_hlc, ?),"
        " language = ?, profile = ? WHERE id = ? AND started_hlc = 0",
        (p.visitor_id, p.channel, e.hlc, e.hlc, p.language, _encode(p.profile), p.conversation_id),
    )


@handles(ev.MessageAdded)
def _message_added(conn: Connection, e: ev.Event, p: ev.MessageAdded) -> None:
    m = p.message
    stored = conn.execute(
        "INSERT OR IGNORE INTO messages (id, conversation_id, hlc, origin, role, text, source, citations,"
        " trace_id, author, attachments) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            m.id, m.conversation_id, e.hlc, e.origin, m.role, m.text, m.source,
            _encode(m.citations), m.trace_id, m.author, _encode(m.attachments),
        ),
    )
    if stored.rowcount:
        conversation_search.index_message(conn, stored.lastrowid, m.text)
    if m.role == "note":
        return
    values = {"hlc": e.hlc, "origin": e.origin, "last": m.text[:200] or ("[image]" if m.attachments else ""),
              "role": m.role, "visitor": m.role == "visitor", "id": m.conversation_id,
              "subject": m.text[:80] or ("[image]" if m.attachments else "")}
    if conn.execute(_SUMMARY, values).rowcount == 0:  # its conversation is not here yet
        _conversation(conn, m.conversation_id)
        conn.execute(_SUMMARY, values)


# One statement (every SET expression sees the row as it was): the newest message by (hlc,
# origin) is the last one; the oldest visitor message is the subject.
_NEWER = "(last_message_hlc, last_message_origin) < (:hlc, :origin)"
_FIRST = ":visitor AND (subject_hlc = 0 OR (subject_hlc, subject_origin) > (:hlc, :origin))"
_SUMMARY = (
    "UPDATE conversations SET updated_hlc = max(updated_hlc, :hlc),"
    f" last_text = CASE WHEN {_NEWER} THEN :last ELSE last_text END,"
    f" last_role = CASE WHEN {_NEWER} THEN :role ELSE last_role END,"
    f" last_message_origin = CASE WHEN {_NEWER} THEN :origin ELSE last_message_origin END,"
    f" last_message_hlc = CASE WHEN {_NEWER} THEN :hlc ELSE last_message_hlc END,"
    f" subject = CASE WHEN {_FIRST} THEN :subject ELSE subject END,"
    f" subject_origin = CASE WHEN {_FIRST} THEN :origin ELSE subject_origin END,"
    f" subject_hlc = CASE WHEN {_FIRST} THEN :hlc ELSE subject_hlc END,"
    " last_visitor_hlc = CASE WHEN :visitor THEN max(last_visitor_hlc, :hlc) ELSE last_visitor_hlc END"
    " WHERE id = :id"
)


@handles(ev.TraceRecorded)
def _trace_recorded(conn: Connection, e: ev.Event, p: ev.TraceRecorded) -> None:
    t = p.trace
    conn.execute(
        "INSERT OR IGNORE INTO traces (id, conversation_id, message_id, hlc, body) VALUES (?, ?, ?, ?, ?)",
        (t.trace_id, t.conversation_id, t.message_id, e.hlc, _encode(t)),
    )


def _change_state(conn: Connection, e: ev.Event, conversation_id: str, assignments: str,
                  values: tuple[Any, ...]) -> None:
    """Set the conversation's state columns (``assignments``, an SQL SET list) unless a newer state
    change is already applied; ``updated_hlc`` moves in any case."""
    _conversation(conn, conversation_id)
    conn.execute(f"UPDATE conversations SET {assignments}, state_hlc = ?, state_origin = ?"
                 " WHERE id = ? AND (state_hlc, state_origin) < (?, ?)",
                 (*values, e.hlc, e.origin, conversation_id, e.hlc, e.origin))
    conn.execute("UPDATE conversations SET updated_hlc = max(updated_hlc, ?) WHERE id = ?", (e.hlc, conversation_id))


@handles(ev.OwnerChanged)
def _owner_changed(conn: Connection, e: ev.Event, p: ev.OwnerChanged) -> None:
    _change_state(conn, e, p.conversation_id, "owner = ?, status = 'open', assignee = ?, queued_hlc = ?",
                  (p.owner, p.assignee, e.hlc if p.owner == "queue" else 0))


@handles(ev.ConversationAssigned)
def _conversation_assigned(conn: Connection, e: ev.Event, p: ev.ConversationAssigned) -> None:
    _change_state(conn, e, p.conversation_id, "assignee = ?", (p.assignee,))


@handles(ev.ConversationClosed)
def _conversation_closed(conn: Connection, e: ev.Event, p: ev.ConversationClosed) -> None:
    _change_state(conn, e, p.conversation_id, "status = 'closed', queued_hlc = 0", ())


@handles(ev.ConversationReopened)
def _conversation_reopened(conn: Connection, e: ev.Event, p: ev.ConversationReopened) -> None:
    assignee = p.owner.removeprefix("agent:") if p.owner.startswith("agent:") else ""
    _change_state(conn, e, p.conversation_id, "status = 'open', owner = ?, assignee = ?, queued_hlc = 0",
                  (p.owner, assignee))


@handles(ev.RatingGiven)
def _rating_given(conn: Connection, e: ev.Event, p: ev.RatingGiven) -> None:
    _conversation(conn, p.conversation_id)
    conn.execute("UPDATE conversations SET rating = ?, rating_comment = ?, rating_hlc = ?, rating_origin = ?"
                 " WHERE id = ? AND (rating_hlc, rating_origin) < (?, ?)",
                 (p.score, p.comment, e.hlc, e.origin, p.conversation_id, e.hlc, e.origin))


@handles(ev.TicketCreated)
def _ticket_created(conn: Connection, e: ev.Event, p: ev.TicketCreated) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO tickets (id, visitor_id, conversation_id, name, contact, message, language, hlc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (p.ticket_id, p.visitor_id, p.conversation_id, p.name, p.contact, p.message, p.language, e.hlc),
    )


@handles(ev.TicketAnswered)
def _ticket_answered(conn: Connection, e: ev.Event, p: ev.TicketAnswered) -> None:
    conn.execute("UPDATE tickets SET status = 'answered', answer = ?, answered_by = ? WHERE id = ?",
                 (p.answer, p.by, p.ticket_id))


def _lww(conn: Connection, table: str, key: str, key_value: str, e: ev.Event, row: dict[str, Any]) -> None:
    """Upsert ``row`` unless the stored one carries a newer ``(hlc, origin)``."""
    current = conn.execute(f"SELECT hlc, origin FROM {table} WHERE {key} = ?", (key_value,)).fetchone()
    if current is not None and (current[0], current[1]) > (e.hlc, e.origin):
        record_loser(conn, table, key_value, e, (current[0], current[1]))
        return
    row = {key: key_value, **row, "hlc": e.hlc, "origin": e.origin}
    columns = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    conn.execute(f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))


@handles(ev.UserUpserted)
def _user_upserted(conn: Connection, e: ev.Event, p: ev.UserUpserted) -> None:
    # A sign-in name is one account everywhere: two sites that each made "admin" (each `init`
    # does) end with the newer of the two on both, the other kept for review.
    other = conn.execute("SELECT id, hlc, origin FROM users WHERE name = ? AND id != ?", (p.name, p.user_id)).fetchone()
    if other is not None:
        if (other[1], other[2]) > (e.hlc, e.origin):
            record_loser(conn, "users", p.name, e, (other[1], other[2]))
            return
        conn.execute("DELETE FROM users WHERE id = ?", (other[0],))
    _lww(conn, "users", "id", p.user_id, e, {
        "name": p.name, "role": p.role, "password_hash": p.password_hash, "disabled": int(p.disabled),
        "display_name": p.display_name, "capacity": p.capacity,
    })


@handles(ev.TokenIssued)
def _token_issued(conn: Connection, e: ev.Event, p: ev.TokenIssued) -> None:
    _lww(conn, "api_tokens", "id", p.token_id, e, {
        "name": p.name, "role": p.role, "token_hash": p.token_hash, "user_id": p.user_id, "revoked": 0,
    })
    if conn.execute("SELECT 1 FROM node_state WHERE key = ?", (f"revoked:{p.token_id}",)).fetchone():
        conn.execute("UPDATE api_tokens SET revoked = 1 WHERE id = ?", (p.token_id,))


@handles(ev.TokenRevoked)
def _token_revoked(conn: Connection, e: ev.Event, p: ev.TokenRevoked) -> None:
    if conn.execute("UPDATE api_tokens SET revoked = 1 WHERE id = ?", (p.token_id,)).rowcount == 0:
        # Revoked at another site before this one saw it issued: the revocation must still hold.
        conn.execute("INSERT OR IGNORE INTO node_state (key, value) VALUES (?, 1)", (f"revoked:{p.token_id}",))


@handles(ev.SettingChanged)
def _setting_changed(conn: Connection, e: ev.Event, p: ev.SettingChanged) -> None:
    _lww(conn, "settings", "key", p.key, e, {"value": p.value})


@handles(ev.AuditRecorded)
def _audit_recorded(conn: Connection, e: ev.Event, p: ev.AuditRecorded) -> None:
    row = conn.execute(  # the predecessor within the same epoch (store/log.py): one chain per epoch
        "SELECT hash FROM audit WHERE origin = ? AND seq < ? AND seq >= ? ORDER BY seq DESC LIMIT 1",
        (e.origin, e.seq, epoch_of(e.seq) << EPOCH_BITS),
    ).fetchone()
    prev = row[0] if row else ""
    conn.execute(
        "INSERT OR IGNORE INTO audit (origin, seq, hlc, actor, action, target, detail, ip, before, after,"
        " prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (e.origin, e.seq, e.hlc, p.actor, p.action, p.target, p.detail, p.ip, p.before, p.after, prev,
         audit_hash(prev, e, p)),
    )


def audit_hash(prev_hash: str, e: ev.Event, p: ev.AuditRecorded) -> str:
    """SHA-256 over the predecessor's hash, the envelope and every field of the record.

    Records without ``ip``/``before``/``after`` keep the first formula, so chains written before
    those fields existed still verify; the others hash an unambiguous JSON array.
    """
    if not (p.ip or p.before or p.after):
        fields = [prev_hash, e.origin, str(e.seq), str(e.hlc), p.actor, p.action, p.target, p.detail]
        return hashlib.sha256("\x1f".join(fields).encode()).hexdigest()
    record = [prev_hash, e.origin, e.seq, e.hlc, p.actor, p.action, p.target, p.detail, p.ip, p.before, p.after]
    return hashlib.sha256(b"audit/2\n" + msgspec.json.encode(record)).hexdigest()


@handles(ev.AttachmentStored)
def _attachment_stored(conn: Connection, e: ev.Event, p: ev.AttachmentStored) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO attachments (id, media_type, size, visitor_id, data, hlc) VALUES (?, ?, ?, ?, ?, ?)",
        (p.attachment_id, p.media_type, len(p.data), p.visitor_id, p.data, e.hlc),
    )
    conn.execute("INSERT OR IGNORE INTO attachment_visitors (attachment_id, visitor_id) VALUES (?, ?)",
                 (p.attachment_id, p.visitor_id))


@handles(ev.AttachmentShared)
def _attachment_shared(conn: Connection, e: ev.Event, p: ev.AttachmentShared) -> None:
    conn.execute("INSERT OR IGNORE INTO attachment_visitors (attachment_id, visitor_id) VALUES (?, ?)",
                 (p.attachment_id, p.visitor_id))


@handles(ev.FeedbackGiven)
def _feedback_given(conn: Connection, e: ev.Event, p: ev.FeedbackGiven) -> None:
    conn.execute(
        "INSERT INTO feedback (message_id, conversation_id, rating, hlc, origin) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (message_id) DO UPDATE SET rating = excluded.rating, hlc = excluded.hlc, origin = excluded.origin"
        " WHERE (excluded.hlc, excluded.origin) > (feedback.hlc, feedback.origin)",
        (p.message_id, p.conversation_id, p.rating, e.hlc, e.origin),
    )
from appliance.store import intents, knowledge_apply, privacy, webhooks  # noqa: E402,F401
