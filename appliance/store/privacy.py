"""Erasure in the store: tombstones, the rows they delete and the logged events they redact.

An ``privacy.erased`` event (:class:`~appliance.core.events.Erased`) is applied like any other,
here and on every paired node it replicates to, and deletes every row about its subject:

- a **conversation**: its row (profile, subject, last text, rating), messages, traces, thumbs
  (``feedback``), read marks (``reads``), its tickets, the uploads its visitor sent in it that the
  visitor no longer uses elsewhere (and the blob, once no visitor uses it), and the answer-cache
  (L3, ``reply_cache``) entries holding one of its bot replies;
- a **visitor**: every conversation and ticket of theirs up to the tombstone (by hybrid clock)
  and every upload link of theirs;
- a **ticket** or an unused **attachment**: that row.

The event log is append-only, but an erased subject's earlier events must not keep its data:
each is rewritten in place as a ``redacted`` event (:class:`~appliance.core.events.Redacted`),
keeping ``(origin, seq, hlc)`` so replication high-water marks still hold. Events are found
through ``event_subjects``, filled as each event is applied. The tombstone stays in ``erasures``:
an event about an erased conversation or ticket that arrives later (from a peer that had not
seen the erasure yet) is redacted on arrival instead of applied; for a visitor or an attachment
only events up to the tombstone's clock are dropped, so a visitor who comes back after an
erasure starts afresh and the same image bytes can be uploaded again.

Not erased: audit records (they name conversation and visitor ids, never what was said, and the
hash chain must stay verifiable) and the tombstones themselves (ids only). The L1 (in-process)
and L2 (Redis) answer caches are keyed by a hash of the question and expire after
``cache.ttl_s``; they are not reached from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from appliance.core import events as ev
from appliance.core.cache import CACHEABLE_SOURCES
from appliance.core.desk import Ticket
from appliance.core.errors import NotFound
from appliance.core.events import ErasedKind, VisitorProfile
from appliance.core.hlc import physical_ms
from appliance.core.prompts import strip_markers
from appliance.core.types import Message, Reply
from appliance.store import desk
from appliance.store.apply import admits, handles
from appliance.store.conversation_search import unindex_conversation
from appliance.store.db import Connection, connect

_strings = msgspec.msgpack.Decoder(list[str])
_profile = msgspec.msgpack.Decoder(VisitorProfile)
_reply = msgspec.msgpack.Decoder(Reply)
_BACKLOG_BATCH = 5000


class Erasure(msgspec.Struct, kw_only=True):
    """What one erasure (or a retention run) deleted."""

    conversations: int = 0
    messages: int = 0
    tickets: int = 0
    attachments: int = 0
    events: int = 0

    def add(self, other: Erasure) -> None:
        for field in self.__struct_fields__:
            setattr(self, field, getattr(self, field) + getattr(other, field))

    def describe(self) -> str:
        """``conversations=2 messages=9 tickets=1 attachments=1 events=14`` (events: log entries redacted)."""
        return " ".join(f"{f}={getattr(self, f)}" for f in self.__struct_fields__)


# -- which subjects an event is about ----------------------------------------------------


def subjects(p: Any) -> list[tuple[ErasedKind, str]]:
    """The conversations, visitors, tickets and uploads an event carries data about."""
    if isinstance(p, ev.ConversationStarted):
        return [("conversation", p.conversation_id), ("visitor", p.visitor_id)]
    if isinstance(p, ev.MessageAdded):
        return [("conversation", p.message.conversation_id)]
    if isinstance(p, ev.TraceRecorded):
        return [("conversation", p.trace.conversation_id)]
    if isinstance(p, ev.OwnerChanged | ev.ConversationAssigned | ev.ConversationClosed | ev.ConversationReopened
                  | ev.RatingGiven | ev.FeedbackGiven):
        return [("conversation", p.conversation_id)]
    if isinstance(p, ev.TicketCreated):
        found: list[tuple[ErasedKind, str]] = [("ticket", p.ticket_id), ("visitor", p.visitor_id)]
        return found + ([("conversation", p.conversation_id)] if p.conversation_id else [])
    if isinstance(p, ev.TicketAnswered):
        return [("ticket", p.ticket_id)]
    if isinstance(p, ev.AttachmentStored | ev.AttachmentShared):
        return [("attachment", p.attachment_id), ("visitor", p.visitor_id)]
    return []


@admits
def _admit(conn: Connection, e: ev.Event, p: Any) -> bool:
    """Index the event by its subjects, or redact it when one of them was erased before it."""
    about = subjects(p)
    if not about:
        return True
    ids = [subject_id for _, subject_id in about]
    tombstones = conn.execute(f"SELECT kind, hlc, reason FROM erasures WHERE subject_id IN ({_marks(ids)})",
                              ids).fetchall()
    covering = [(hlc, reason) for kind, hlc, reason in tombstones
                if kind in ("conversation", "ticket") or e.hlc <= hlc]
    if not covering:
        conn.executemany("INSERT OR IGNORE INTO event_subjects (subject_id, origin, seq) VALUES (?, ?, ?)",
                         [(subject_id, e.origin, e.seq) for subject_id in ids])
        return True
    _redact(conn, e.origin, e.seq, e.type)
    # A conversation or ticket first seen in an event a visitor's tombstone covers is erased too:
    # its later events (which name only the conversation) must be dropped, earlier ones removed.
    hlc, reason = max(covering)
    for kind, subject_id in about:
        if kind in ("conversation", "ticket") and not _tombstoned(conn, subject_id):
            erase(conn, kind, subject_id, hlc, reason)
    return False


@handles(ev.Erased)
def _erased(conn: Connection, e: ev.Event, p: ev.Erased) -> None:
    index_backlog(conn)  # a node upgraded in place indexes its older events before the first erasure
    erase(conn, p.kind, p.subject_id, e.hlc, p.reason)


@handles(ev.Redacted)
def _redacted(conn: Connection, e: ev.Event, p: ev.Redacted) -> None:
    return None


# -- erasing ------------------------------------------------------------------------------


def erase(conn: Connection, kind: ErasedKind, subject_id: str, hlc: int, reason: str) -> Erasure:
    """Delete every row and redact every logged event about one subject; idempotent."""
    done = Erasure()
    conn.execute("INSERT INTO erasures (subject_id, kind, reason, hlc) VALUES (?, ?, ?, ?) ON CONFLICT (subject_id)"
                 " DO UPDATE SET hlc = max(hlc, excluded.hlc), reason = excluded.reason",
                 (subject_id, kind, reason, hlc))
    if kind == "conversation":
        _erase_conversation(conn, subject_id, hlc, reason, done)
    elif kind == "visitor":
        _erase_visitor(conn, subject_id, hlc, reason, done)
    elif kind == "ticket":
        done.tickets += conn.execute("DELETE FROM tickets WHERE id = ?", (subject_id,)).rowcount
        done.events += _redact_subject(conn, subject_id)
    else:
        _erase_attachment(conn, subject_id, hlc, done)
    return done


def _erase_conversation(conn: Connection, cid: str, hlc: int, reason: str, done: Erasure) -> None:
    found = conn.execute("SELECT visitor_id FROM conversations WHERE id = ?", (cid,)).fetchone()
    replies = {r[0] for r in conn.execute(
        f"SELECT text FROM messages WHERE conversation_id = ? AND role = 'bot' AND source IN"
        f" ({_marks(CACHEABLE_SOURCES)})", (cid, *CACHEABLE_SOURCES))}
    uploads = {a for r in conn.execute("SELECT attachments FROM messages WHERE conversation_id = ? AND"
                                       " length(attachments) > 1", (cid,)) for a in _strings.decode(r[0])}
    for (ticket_id,) in conn.execute("SELECT id FROM tickets WHERE conversation_id = ?", (cid,)).fetchall():
        done.add(erase(conn, "ticket", ticket_id, hlc, reason))
    unindex_conversation(conn, cid)
    done.messages += conn.execute("DELETE FROM messages WHERE conversation_id = ?", (cid,)).rowcount
    for table in ("traces", "feedback", "reads"):
        conn.execute(f"DELETE FROM {table} WHERE conversation_id = ?", (cid,))
    done.conversations += conn.execute("DELETE FROM conversations WHERE id = ?", (cid,)).rowcount
    done.events += _redact_subject(conn, cid)
    if replies:
        _forget_replies(conn, replies)
    if found is not None:
        for attachment_id in uploads:
            if not referenced(conn, attachment_id, found[0]):
                _unlink(conn, attachment_id, found[0], hlc, reason, done)


def _erase_visitor(conn: Connection, vid: str, hlc: int, reason: str, done: Erasure) -> None:
    for (cid,) in conn.execute("SELECT id FROM conversations WHERE visitor_id = ? AND started_hlc <= ?",
                               (vid, hlc)).fetchall():
        done.add(erase(conn, "conversation", cid, hlc, reason))
    for (ticket_id,) in conn.execute("SELECT id FROM tickets WHERE visitor_id = ? AND hlc <= ?",
                                     (vid, hlc)).fetchall():
        done.add(erase(conn, "ticket", ticket_id, hlc, reason))
    for (attachment_id,) in conn.execute("SELECT attachment_id FROM attachment_visitors WHERE visitor_id = ?",
                                         (vid,)).fetchall():
        _unlink(conn, attachment_id, vid, hlc, reason, done)
    done.events += _redact_subject(conn, vid, up_to_hlc=hlc)


def _erase_attachment(conn: Connection, attachment_id: str, hlc: int, done: Erasure) -> None:
    conn.execute("DELETE FROM attachment_visitors WHERE attachment_id = ?", (attachment_id,))
    done.attachments += conn.execute("DELETE FROM attachments WHERE id = ?", (attachment_id,)).rowcount
    done.events += _redact_subject(conn, attachment_id, up_to_hlc=hlc)


def _unlink(conn: Connection, attachment_id: str, vid: str, hlc: int, reason: str, done: Erasure) -> None:
    """The visitor no longer uses the upload; the blob goes with its last user."""
    conn.execute("DELETE FROM attachment_visitors WHERE attachment_id = ? AND visitor_id = ?", (attachment_id, vid))
    other = conn.execute("SELECT visitor_id FROM attachment_visitors WHERE attachment_id = ? ORDER BY visitor_id"
                         " LIMIT 1", (attachment_id,)).fetchone()
    if other is None:
        done.add(erase(conn, "attachment", attachment_id, hlc, reason))
        return
    # Someone else uses the same bytes: the blob stays, credited to them, in the table and the log.
    conn.execute("UPDATE attachments SET visitor_id = ? WHERE id = ? AND visitor_id = ?",
                 (other[0], attachment_id, vid))
    rows = conn.execute(
        "SELECT e.origin, e.seq, e.type, e.payload FROM event_subjects a JOIN event_subjects v"
        " ON v.origin = a.origin AND v.seq = a.seq AND v.subject_id = ? JOIN events e ON e.origin = a.origin"
        " AND e.seq = a.seq WHERE a.subject_id = ?", (vid, attachment_id)).fetchall()
    for origin, seq, kind, payload in rows:
        stored = ev.decode_payload(payload)
        if isinstance(stored, ev.AttachmentStored):
            moved = msgspec.structs.replace(stored, visitor_id=other[0])
            conn.execute("UPDATE events SET payload = ? WHERE origin = ? AND seq = ?",
                         (ev.encode_payload(moved), origin, seq))
            conn.execute("UPDATE OR IGNORE event_subjects SET subject_id = ? WHERE subject_id = ? AND origin = ?"
                         " AND seq = ?", (other[0], vid, origin, seq))
        else:
            _redact(conn, origin, seq, kind, payload)
            done.events += 1


def _redact_subject(conn: Connection, subject_id: str, up_to_hlc: int | None = None) -> int:
    clock = "" if up_to_hlc is None else " AND e.hlc <= ?"
    rows = conn.execute(
        "SELECT e.origin, e.seq, e.type, e.payload FROM event_subjects s JOIN events e ON e.origin = s.origin"
        f" AND e.seq = s.seq WHERE s.subject_id = ?{clock}",
        (subject_id,) if up_to_hlc is None else (subject_id, up_to_hlc)).fetchall()
    for origin, seq, kind, payload in rows:
        _redact(conn, origin, seq, kind, payload)
    return len(rows)


def _redact(conn: Connection, origin: str, seq: int, kind: str, payload: bytes | None = None) -> None:
    """Rewrite one logged event as ``redacted`` and forget which subjects it was about."""
    if payload is not None:
        ids = [subject_id for _, subject_id in subjects(ev.decode_payload(payload))]
        conn.executemany("DELETE FROM event_subjects WHERE subject_id = ? AND origin = ? AND seq = ?",
                         [(subject_id, origin, seq) for subject_id in ids])
    conn.execute("UPDATE events SET type = 'redacted', payload = ? WHERE origin = ? AND seq = ?",
                 (ev.encode_payload(ev.Redacted(was=kind)), origin, seq))


def _forget_replies(conn: Connection, texts: set[str]) -> None:
    """Drop L3 answer-cache entries holding one of these bot replies (the key is a hash of the question;
    the entry holds the answer before its markers were stripped, as the model gave it)."""
    stale = [key for key, raw in conn.execute("SELECT key, reply FROM reply_cache")
             if (text := _reply.decode(raw).text) in texts or strip_markers(text) in texts]
    conn.executemany("DELETE FROM reply_cache WHERE key = ?", [(k,) for k in stale])


def _tombstoned(conn: Connection, subject_id: str) -> bool:
    return conn.execute("SELECT 1 FROM erasures WHERE subject_id = ?", (subject_id,)).fetchone() is not None


def _marks(values: Any) -> str:
    return ", ".join("?" for _ in values)


def referenced(conn: Connection, attachment_id: str, visitor_id: str | None = None) -> bool:
    """Whether a message of (one of) the visitor(s) using the upload still shows it."""
    needle = attachment_id.encode()
    if visitor_id is not None:
        found = conn.execute(
            "SELECT 1 FROM conversations c JOIN messages m ON m.conversation_id = c.id WHERE c.visitor_id = ?"
            " AND length(m.attachments) > 1 AND instr(m.attachments, ?) > 0 LIMIT 1", (visitor_id, needle))
    else:
        found = conn.execute(
            "SELECT 1 FROM attachment_visitors v JOIN conversations c ON c.visitor_id = v.visitor_id"
            " JOIN messages m ON m.conversation_id = c.id WHERE v.attachment_id = ?"
            " AND length(m.attachments) > 1 AND instr(m.attachments, ?) > 0 LIMIT 1", (attachment_id, needle))
    return found.fetchone() is not None


def truncate_wal(path: Path) -> bool:
    """Copy the write-ahead log into the database file and empty it: the log keeps the earlier images
    of the pages erased rows lived in. False when a reader kept it from finishing (it is retried
    by SQLite's own checkpoints; the pages are overwritten as the log wraps)."""
    conn = connect(path)
    try:
        busy: int = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    finally:
        conn.close()
    return busy == 0


# -- events logged before the index existed -----------------------------------------------


def index_backlog(conn: Connection, limit: int | None = None) -> bool:
    """Index up to ``limit`` events logged before migration 7 (all when None); True when none are left."""
    while True:
        pending = conn.execute("SELECT origin, seq FROM event_subjects_backlog LIMIT 1").fetchone()
        if pending is None:
            return True
        if limit is not None and limit <= 0:
            return False
        origin, below = pending
        batch = _BACKLOG_BATCH if limit is None else min(limit, _BACKLOG_BATCH)
        rows = conn.execute("SELECT seq, payload FROM events WHERE origin = ? AND seq <= ? ORDER BY seq DESC LIMIT ?",
                            (origin, below, batch)).fetchall()
        conn.executemany("INSERT OR IGNORE INTO event_subjects (subject_id, origin, seq) VALUES (?, ?, ?)",
                         [(subject_id, origin, seq) for seq, payload in rows
                          for _, subject_id in subjects(ev.decode_payload(payload))])
        if len(rows) < batch:
            conn.execute("DELETE FROM event_subjects_backlog WHERE origin = ?", (origin,))
        else:
            conn.execute("UPDATE event_subjects_backlog SET seq = ? WHERE origin = ?", (rows[-1][0] - 1, origin))
        if limit is not None:
            limit -= len(rows)


# -- what retention erases ----------------------------------------------------------------


def stale_conversations(conn: Connection, before_hlc: int, limit: int) -> list[str]:
    """Conversations whose last activity is older than ``before_hlc``, oldest first."""
    rows = conn.execute("SELECT id FROM conversations WHERE status IN ('open', 'closed') AND updated_hlc < ?"
                        " ORDER BY updated_hlc LIMIT ?", (before_hlc, limit)).fetchall()
    return [r[0] for r in rows]


def stale_tickets(conn: Connection, before_hlc: int, limit: int) -> list[str]:
    """Left messages older than ``before_hlc`` that no remaining conversation holds."""
    rows = conn.execute(
        "SELECT t.id FROM tickets t LEFT JOIN conversations c ON c.id = t.conversation_id"
        " WHERE t.status IN ('open', 'answered') AND t.hlc < ? AND c.id IS NULL ORDER BY t.hlc LIMIT ?",
        (before_hlc, limit)).fetchall()
    return [r[0] for r in rows]


def stale_attachments(conn: Connection, before_hlc: int, after_id: str, limit: int) -> tuple[list[str], str]:
    """Uploads stored before ``before_hlc`` that no message shows any more, in id order from
    ``after_id``; also the cursor to continue from ("" when done)."""
    rows = conn.execute("SELECT id FROM attachments WHERE hlc < ? AND id > ? ORDER BY id LIMIT ?",
                        (before_hlc, after_id, limit)).fetchall()
    unused = [r[0] for r in rows if not referenced(conn, r[0])]
    return unused, (rows[-1][0] if len(rows) == limit else "")


def purge_expired_replies(conn: Connection, now_ms: int) -> int:
    """Answer-cache entries past their time (never served again, but they hold answers)."""
    count: int = conn.execute("DELETE FROM reply_cache WHERE expires_ms <= ?", (now_ms,)).rowcount
    return count


# -- what an export or an erasure covers ---------------------------------------------------


class ExportedConversation(msgspec.Struct, kw_only=True):
    id: str
    channel: str
    status: str
    owner: str
    language: str
    subject: str
    started_ms: int
    updated_ms: int
    profile: VisitorProfile
    rating: int | None = None
    rating_comment: str = ""
    messages: list[Message]
    thumbs: dict[str, str] = msgspec.field(default_factory=dict)


class ExportedAttachment(msgspec.Struct, kw_only=True):
    attachment_id: str
    media_type: str
    size: int


class VisitorFootprint(msgspec.Struct, kw_only=True):
    """What is stored about a visitor, counted; ``erased_ms`` when a tombstone names them."""

    conversations: list[str]
    messages: int
    tickets: int
    attachments: int
    erased_ms: int = 0

    @property
    def empty(self) -> bool:
        return not (self.conversations or self.tickets or self.attachments)


def measure(conn: Connection, *, conversations: Sequence[str] = (), tickets: Sequence[str] = (),
            attachments: Sequence[str] = (), visitor_id: str = "") -> Erasure:
    """What erasing these subjects will delete (counted before the tombstones are applied)."""
    tickets = list(tickets)
    subjects_ids = [*conversations, *tickets, *attachments, *([visitor_id] if visitor_id else [])]
    done = Erasure(conversations=len(conversations), tickets=len(tickets), attachments=len(attachments))
    for part in _chunks(list(conversations)):
        done.messages += conn.execute(f"SELECT count(*) FROM messages WHERE conversation_id IN ({_marks(part)})",
                                      part).fetchone()[0]
        done.tickets += conn.execute(f"SELECT count(*) FROM tickets WHERE conversation_id IN ({_marks(part)})"
                                     f" AND id NOT IN ({_marks(tickets)})", [*part, *tickets]).fetchone()[0]
    events: set[tuple[str, int]] = set()
    for part in _chunks(subjects_ids):
        events.update(conn.execute(f"SELECT origin, seq FROM event_subjects WHERE subject_id IN ({_marks(part)})",
                                   part).fetchall())
    done.events = len(events)
    return done


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    return [values[i:i + size] for i in range(0, len(values), size)]


def footprint(conn: Connection, visitor_id: str) -> VisitorFootprint:
    conversations = [r[0] for r in conn.execute(
        "SELECT id FROM conversations WHERE visitor_id = ? ORDER BY started_hlc", (visitor_id,))]
    messages = conn.execute("SELECT count(*) FROM messages m JOIN conversations c ON c.id = m.conversation_id"
                            " WHERE c.visitor_id = ?", (visitor_id,)).fetchone()[0]
    tickets = conn.execute("SELECT count(*) FROM tickets WHERE visitor_id = ?", (visitor_id,)).fetchone()[0]
    attachments = conn.execute("SELECT count(*) FROM attachment_visitors WHERE visitor_id = ?",
                               (visitor_id,)).fetchone()[0]
    erased = conn.execute("SELECT hlc FROM erasures WHERE subject_id = ? AND kind = 'visitor'",
                          (visitor_id,)).fetchone()
    return VisitorFootprint(conversations=conversations, messages=messages, tickets=tickets, attachments=attachments,
                            erased_ms=physical_ms(erased[0]) if erased else 0)


def conversation_visitor(conn: Connection, conversation_id: str) -> str:
    """The visitor of a conversation (for "erase whoever wrote this one")."""
    found = conn.execute("SELECT visitor_id FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    if found is None:
        raise NotFound(f"conversation {conversation_id} not found")
    visitor: str = found[0]
    return visitor


def exported_conversation(conn: Connection, conversation_id: str) -> ExportedConversation | None:
    found = conn.execute(
        "SELECT id, channel, status, owner, language, subject, started_hlc, updated_hlc, profile, rating,"
        " rating_comment FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    if found is None:
        return None
    thumbs = dict(conn.execute("SELECT message_id, rating FROM feedback WHERE conversation_id = ?",
                               (conversation_id,)).fetchall())
    return ExportedConversation(
        id=found[0], channel=found[1], status=found[2], owner=found[3], language=found[4], subject=found[5],
        started_ms=physical_ms(found[6]), updated_ms=physical_ms(found[7]),
        profile=_profile.decode(found[8]) if found[8] else VisitorProfile(), rating=found[9],
        rating_comment=found[10], messages=desk.messages(conn, conversation_id), thumbs=thumbs)


def visitor_ticket_ids(conn: Connection, visitor_id: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM tickets WHERE visitor_id = ? ORDER BY hlc", (visitor_id,))]


def visitor_tickets(conn: Connection, visitor_id: str) -> list[Ticket]:
    return [desk.ticket(conn, ticket_id) for ticket_id in visitor_ticket_ids(conn, visitor_id)]


def visitor_attachments(conn: Connection, visitor_id: str) -> list[ExportedAttachment]:
    rows = conn.execute("SELECT a.id, a.media_type, a.size FROM attachment_visitors v JOIN attachments a"
                        " ON a.id = v.attachment_id WHERE v.visitor_id = ? ORDER BY a.hlc", (visitor_id,))
    return [ExportedAttachment(attachment_id=r[0], media_type=r[1], size=r[2]) for r in rows]
