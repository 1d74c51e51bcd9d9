"""Full-text search over messages, the conversations page's list, and the streamed export.

``message_fts`` (migration 12) is a contentless FTS5 table (``porter unicode61``) whose rowid is
the message's rowid in ``messages``. A run of CJK characters is indexed as its overlapping
character bigrams followed by its last character, so every Chinese substring of two or more
characters is a phrase of bigrams, and every single character begins some token (a prefix
query finds it). ``apply.py`` indexes each message in the transaction that stores it; erasure
(``privacy.py``) removes a conversation's rows before its messages; the migration indexes the
messages stored before it. Nothing else writes ``messages``.

The export reads on its own read-only connection, in one read transaction (one snapshot),
``fetchmany`` at a time: rows are encoded and sent chunk by chunk, never all held at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from appliance.core.chunking import CJK_CHAR
from appliance.core.errors import InputError
from appliance.core.events import VisitorProfile
from appliance.core.hlc import physical_ms
from appliance.core.reports import ConversationFilter, ExportedMessage, iso_ms
from appliance.core.retrieval import word_terms
from appliance.store.db import Connection, connect

_HLC_SHIFT = 16  # core/hlc.py: 48 bits of milliseconds above 16 bits of counter
_CJK_RUN = re.compile(f"{CJK_CHAR.pattern}+")
_profile = msgspec.msgpack.Decoder(VisitorProfile)
MAX_TERMS = 16
HITS_PER_CONVERSATION = 3


def _grams(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)] + [run[-1]]


def index_text(text: str) -> str:
    """A message's text as ``message_fts`` indexes it (also registered for the migration)."""
    return _CJK_RUN.sub(lambda run: f" {' '.join(_grams(run.group()))} ", text)


def index_message(conn: Connection, rowid: int, text: str) -> None:
    conn.execute("INSERT INTO message_fts (rowid, body) VALUES (?, ?)", (rowid, index_text(text)))


def unindex_conversation(conn: Connection, conversation_id: str) -> None:
    conn.execute("DELETE FROM message_fts WHERE rowid IN (SELECT rowid FROM messages WHERE conversation_id = ?)",
                 (conversation_id,))


def match_expression(query: str) -> str:
    """An FTS5 expression that every term of ``query`` must match (never a syntax error): each
    word a quoted token, each CJK run the phrase of its bigrams (one character: a prefix)."""
    terms: list[str] = []
    for piece in query.split():
        for part in _CJK_RUN.split(piece):
            terms += [f'"{word}"' for word in word_terms(part)]
        for run in _CJK_RUN.findall(piece):
            terms.append(f'"{run}"*' if len(run) == 1 else '"' + " ".join(_grams(run)[:-1]) + '"')
    if not terms:
        raise InputError(f"nothing to search for in q={query!r}: give a word or a Chinese character")
    return " ".join(dict.fromkeys(terms[:MAX_TERMS]))


def _where(f: ConversationFilter, id_column: str = "c.id") -> tuple[str, dict[str, Any]]:
    where = ["1"]
    params: dict[str, Any] = {}
    if f.since_ms is not None:
        where.append("c.started_hlc >= :since")
        params["since"] = f.since_ms << _HLC_SHIFT
    if f.until_ms is not None:
        where.append("c.started_hlc < :until")
        params["until"] = f.until_ms << _HLC_SHIFT
    if f.resolved is not None:
        where.append("c.status = 'closed'" if f.resolved else "c.status != 'closed'")
    if f.agent:
        where.append("(c.owner = :agent_owner OR c.assignee = :agent OR EXISTS (SELECT 1 FROM messages a"
                     " WHERE a.conversation_id = c.id AND a.role = 'agent' AND a.author = :agent))")
        params |= {"agent": f.agent, "agent_owner": f"agent:{f.agent}"}
    if f.source:
        where.append("EXISTS (SELECT 1 FROM messages s WHERE s.conversation_id = c.id AND s.source = :source)")
        params["source"] = f.source
    if f.q:
        where.append(f"{id_column} IN (SELECT t.conversation_id FROM message_fts JOIN messages t"
                     " ON t.rowid = message_fts.rowid WHERE message_fts MATCH :match)")
        params["match"] = match_expression(f.q)
    return " AND ".join(where), params


# -- the conversations page ---------------------------------------------------------------------


class MessageHit(msgspec.Struct, kw_only=True):
    message_id: str
    role: str
    author: str
    source: str
    text: str
    trace_id: str
    at_ms: int


class FoundConversation(msgspec.Struct, kw_only=True):
    id: str
    visitor_id: str
    visitor_name: str
    subject: str
    status: str
    owner: str
    assignee: str
    language: str
    rating: int | None
    started_ms: int
    updated_ms: int
    messages: int
    traces: int
    hits: list[MessageHit]  # the first messages that match the text (none without one)


class SearchResult(msgspec.Struct, kw_only=True):
    conversations: list[FoundConversation]
    total: int
    next: int | None = None  # pass as ``before`` for the next page


def search(conn: Connection, f: ConversationFilter, *, limit: int = 50, before: int | None = None) -> SearchResult:
    """Matching conversations, newest activity first; with text, each with its first hits."""
    where, params = _where(f)
    total: int = conn.execute(f"SELECT count(*) FROM conversations c WHERE {where}", params).fetchone()[0]
    page = where + (" AND c.updated_hlc < :before" if before is not None else "")
    rows = conn.execute(
        "SELECT c.id, c.visitor_id, c.profile, c.subject, c.status, c.owner, c.assignee, c.language, c.rating,"
        f" c.started_hlc, c.updated_hlc FROM conversations c WHERE {page} ORDER BY c.updated_hlc DESC LIMIT :limit",
        {**params, "before": before, "limit": limit}).fetchall()
    ids = [r[0] for r in rows]
    marks = ", ".join("?" for _ in ids)
    counts = dict(conn.execute(f"SELECT conversation_id, count(*) FROM messages WHERE conversation_id IN ({marks})"
                               " GROUP BY conversation_id", ids).fetchall()) if ids else {}
    traces = dict(conn.execute(f"SELECT conversation_id, count(*) FROM traces WHERE conversation_id IN ({marks})"
                               " GROUP BY conversation_id", ids).fetchall()) if ids else {}
    hits: dict[str, list[MessageHit]] = {}
    if f.q and ids:
        for r in conn.execute(
                "SELECT m.conversation_id, m.id, m.role, m.author, m.source, m.text, m.trace_id, m.hlc"
                " FROM message_fts JOIN messages m ON m.rowid = message_fts.rowid"
                f" WHERE message_fts MATCH ? AND m.conversation_id IN ({marks}) ORDER BY m.hlc",
                (params["match"], *ids)):
            found = hits.setdefault(r[0], [])
            if len(found) < HITS_PER_CONVERSATION:
                found.append(MessageHit(message_id=r[1], role=r[2], author=r[3], source=r[4], text=r[5],
                                        trace_id=r[6], at_ms=physical_ms(r[7])))
    result = [
        FoundConversation(
            id=r[0], visitor_id=r[1], visitor_name=_profile.decode(r[2]).name if r[2] else "", subject=r[3],
            status=r[4], owner=r[5], assignee=r[6], language=r[7], rating=r[8], started_ms=physical_ms(r[9]),
            updated_ms=physical_ms(r[10]), messages=counts.get(r[0], 0), traces=traces.get(r[0], 0),
            hits=hits.get(r[0], []))
        for r in rows
    ]
    return SearchResult(conversations=result, total=total, next=rows[-1][10] if len(rows) == limit else None)


# -- the export ---------------------------------------------------------------------------------


class ExportCursor:
    """The messages of the filtered conversations, conversation by conversation, each in time
    order, read ``size`` rows at a time on a private read-only connection (one snapshot).

    Not thread-safe: one caller at a time (the web layer runs it on one worker thread)."""

    def __init__(self, path: Path, f: ConversationFilter) -> None:
        where, params = _where(f, "m.conversation_id")  # a bad query fails here, before anything is sent
        self._conn = connect(path, readonly=True)
        try:
            self._cursor = self._conn.execute(
                "SELECT c.id, c.started_hlc, c.status, c.owner, c.assignee, c.language, c.rating, c.visitor_id,"
                " m.id, m.hlc, m.role, m.author, m.source, m.trace_id, m.text"
                # messages first (CROSS JOIN keeps that order): read in the order of their index
                # (conversation, time), so nothing is sorted, however many rows there are
                f" FROM messages m CROSS JOIN conversations c ON c.id = m.conversation_id WHERE {where}"
                " ORDER BY m.conversation_id, m.hlc", params)
        except BaseException:
            self._conn.close()
            raise

    def fetch(self, size: int = 1000) -> list[ExportedMessage]:
        return [
            ExportedMessage(
                conversation_id=r[0], conversation_started_at=iso_ms(physical_ms(r[1])), conversation_status=r[2],
                owner=r[3], assignee=r[4], language=r[5], rating=r[6], visitor_id=r[7], message_id=r[8],
                sent_at=iso_ms(physical_ms(r[9])), role=r[10], author=r[11], source=r[12], trace_id=r[13], text=r[14])
            for r in self._cursor.fetchmany(size)
        ]

    def chunks(self, size: int = 1000) -> Iterator[list[ExportedMessage]]:
        while rows := self.fetch(size):
            yield rows

    def close(self) -> None:
        self._conn.close()
