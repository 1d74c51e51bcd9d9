"""Conversations: who may see them, who owns them, and one visitor turn end to end.

A turn is written in two steps: the visitor's message is durable before the bot starts (so a
crash mid-answer loses no customer words), then the bot's reply, its trace and any change of
owner are written together. A conversation owned by a human (``queue`` or ``agent:<id>``)
gets no bot reply until it is handed back.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Literal

import msgspec

from appliance.core import events as ev
from appliance.core.agent import Agent, Conversation
from appliance.core.errors import AuthError, InputError, NotFound, TooLarge, UnsupportedMedia
from appliance.core.hlc import physical_ms
from appliance.core.images import sniff_image
from appliance.core.ports import ChatMessage, ImagePart, TokenSink
from appliance.core.tokens import VisitorTokens, new_id
from appliance.core.types import Citation, Reply, Trace
from appliance.store import Connection, Store, WriteTxn

HISTORY_TURNS = 6
MAX_ATTACHMENTS = 4


class MessageView(msgspec.Struct, kw_only=True):
    id: str
    role: str
    text: str
    source: str = ""
    citations: list[Citation] = msgspec.field(default_factory=list)
    trace_id: str = ""
    author: str = ""
    attachments: list[str] = msgspec.field(default_factory=list)
    created_ms: int = 0


class ConversationView(msgspec.Struct, kw_only=True):
    id: str
    visitor_id: str
    owner: str
    status: str
    started_ms: int
    updated_ms: int


class AttachmentOut(msgspec.Struct, kw_only=True):
    attachment_id: str
    media_type: str
    size: int


class ChatOutcome(msgspec.Struct, kw_only=True):
    conversation_id: str
    message_id: str
    visitor_token: str
    reply: Reply | None
    trace_id: str
    owner: str = "bot"


class Conversations:
    def __init__(
        self, store: Store, agent: Callable[[], Agent], tokens: VisitorTokens, *, max_text_chars: int,
        max_image_bytes: int = 5_242_880,
        agents_online: Callable[[], bool] = lambda: False,
        publish: Callable[[str, MessageView], None] = lambda _c, _m: None,
    ) -> None:
        self._publish = publish
        self._store = store
        self._agent = agent
        self._tokens = tokens
        self._max_text_chars = max_text_chars
        self._max_image_bytes = max_image_bytes
        self._agents_online = agents_online

    def visitor(self, token: str | None) -> str | None:
        return None if not token else self._tokens.verify(token, time.time())

    async def chat(
        self, text: str, *, conversation_id: str | None, visitor_token: str | None,
        attachments: list[str] | None = None, on_token: TokenSink | None = None,
    ) -> ChatOutcome:
        text = text.strip()
        if not text and not attachments:
            raise InputError("text must not be empty")
        if len(text) > self._max_text_chars:
            raise TooLarge(f"text is {len(text)} characters; the limit is {self._max_text_chars}")
        visitor_id = self.visitor(visitor_token)
        if conversation_id is not None and visitor_id is None:
            raise AuthError("a visitor_token is required to continue a conversation")
        token = visitor_token or ""
        if visitor_id is None:
            visitor_id = new_id("vis")
            token = self._tokens.issue(visitor_id, time.time())

        images = await self._images(attachments or [], visitor_id) if attachments else []
        first = conversation_id is None
        if conversation_id is None:
            conversation_id = new_id("conv")
            state = _State(owner="bot", history=[], streak=0)
        else:
            state = await self._store.read(lambda c: _load_state(c, conversation_id, visitor_id))
        visitor_message = ev.MessageAdded(
            message_id=new_id("msg"), conversation_id=conversation_id, role="visitor", text=text,
            attachments=attachments or [],
        )
        started = [ev.ConversationStarted(conversation_id=conversation_id, visitor_id=visitor_id)] if first else []
        await self._store.append(*started, visitor_message)
        self._publish(conversation_id, MessageView(id=visitor_message.message_id, role="visitor", text=text,
                                                   attachments=attachments or []))

        if state.owner != "bot":
            return ChatOutcome(conversation_id=conversation_id, message_id=visitor_message.message_id,
                               visitor_token=token, reply=None, trace_id="", owner="human")

        conversation = Conversation(id=conversation_id, history=state.history, low_confidence_streak=state.streak,
                                    agents_online=self._agents_online())
        turn = await self._agent().process(conversation, text, images=images, on_token=on_token)
        reply_id = new_id("msg")
        turn.trace.message_id = reply_id
        writes: list[ev.EventPayload] = [
            ev.MessageAdded(message_id=reply_id, conversation_id=conversation_id, role="bot", text=turn.reply.text,
                            source=turn.reply.source, citations=turn.reply.citations,
                            trace_id=turn.trace.trace_id),
            ev.TraceRecorded(trace=turn.trace),
        ]
        if turn.handoff:
            writes.append(ev.OwnerChanged(conversation_id=conversation_id, owner="queue",
                                          reason=turn.trace.handoff_reason, by="bot"))
        await self._store.append(*writes)
        self._publish(conversation_id, MessageView(
            id=reply_id, role="bot", text=turn.reply.text, source=turn.reply.source,
            citations=turn.reply.citations, trace_id=turn.trace.trace_id))
        return ChatOutcome(conversation_id=conversation_id, message_id=reply_id, visitor_token=token,
                           reply=turn.reply, trace_id=turn.trace.trace_id,
                           owner="human" if turn.handoff else "bot")

    async def store_image(self, data: bytes, visitor_token: str | None) -> AttachmentOut:
        visitor_id = self.visitor(visitor_token)
        if visitor_id is None:
            raise AuthError("uploading needs the visitor token as 'Authorization: Bearer <token>'")
        if len(data) > self._max_image_bytes:
            raise TooLarge(f"image is {len(data)} bytes; the limit is {self._max_image_bytes}")
        media_type = sniff_image(data)
        if media_type is None:
            raise UnsupportedMedia("not an image: upload PNG, JPEG, GIF or WebP")
        attachment_id = hashlib.sha256(data).hexdigest()
        await self._store.append(ev.AttachmentStored(attachment_id=attachment_id, media_type=media_type,
                                                     visitor_id=visitor_id, data=data))
        return AttachmentOut(attachment_id=attachment_id, media_type=media_type, size=len(data))

    async def _images(self, attachment_ids: list[str], visitor_id: str) -> list[ImagePart]:
        def read(conn: Connection) -> list[ImagePart]:
            parts = []
            for attachment_id in attachment_ids:
                row = conn.execute("SELECT media_type, data FROM attachments WHERE id = ? AND visitor_id = ?",
                                   (attachment_id, visitor_id)).fetchone()
                if row is None:
                    raise NotFound(f"attachment {attachment_id} not found")
                parts.append(ImagePart(media_type=row[0], data=row[1]))
            return parts

        if len(attachment_ids) > MAX_ATTACHMENTS:
            raise InputError(f"at most {MAX_ATTACHMENTS} attachments per message")
        return await self._store.read(read)

    async def feedback(
        self, message_id: str, rating: Literal["up", "down"], visitor_token: str | None
    ) -> tuple[Trace | None, str | None]:
        """Record a visitor's thumbs up/down on a bot reply: the reply's trace and its previous rating."""
        visitor_id = self.visitor(visitor_token)
        if visitor_id is None:
            raise AuthError("feedback needs the visitor token as 'Authorization: Bearer <token>'")

        def work(txn: WriteTxn) -> tuple[bytes | None, str | None]:
            row = txn.conn.execute(
                "SELECT m.conversation_id, t.body, f.rating FROM messages m"
                " JOIN conversations c ON c.id = m.conversation_id LEFT JOIN traces t ON t.id = m.trace_id"
                " LEFT JOIN feedback f ON f.message_id = m.id"
                " WHERE m.id = ? AND m.role = 'bot' AND c.visitor_id = ?", (message_id, visitor_id)).fetchone()
            if row is None:
                raise NotFound(f"bot message {message_id} not found")
            if row[2] != rating:
                txn.append(ev.FeedbackGiven(message_id=message_id, conversation_id=row[0], rating=rating))
            return row[1], row[2]

        # Read and write in one transaction, so two clicks cannot both count as the first.
        body, previous = await self._store.write(work)
        return (_trace.decode(body) if body else None), previous

    async def messages_for_visitor(self, conversation_id: str, visitor_token: str | None) -> list[MessageView]:
        visitor_id = self.visitor(visitor_token)
        if visitor_id is None:
            raise AuthError("send the visitor token as 'Authorization: Bearer <token>'")

        def read(conn: Connection) -> list[MessageView]:
            _check_visitor(conn, conversation_id, visitor_id)
            return messages(conn, conversation_id)

        return await self._store.read(read)


class _State(msgspec.Struct):
    owner: str
    history: list[ChatMessage]
    streak: int


def _check_visitor(conn: Connection, conversation_id: str, visitor_id: str) -> str:
    row = conn.execute("SELECT visitor_id, owner FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    if row is None or row[0] != visitor_id:
        # Another visitor's conversation looks exactly like a missing one.
        raise NotFound(f"conversation {conversation_id} not found")
    owner: str = row[1]
    return owner


def _load_state(conn: Connection, conversation_id: str, visitor_id: str) -> _State:
    owner = _check_visitor(conn, conversation_id, visitor_id)
    rows = conn.execute(
        "SELECT role, text, source FROM messages WHERE conversation_id = ? ORDER BY hlc DESC LIMIT ?",
        (conversation_id, HISTORY_TURNS * 2),
    ).fetchall()
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
    return _State(owner=owner, history=history, streak=streak)


_citations = msgspec.msgpack.Decoder(list[Citation])
_trace = msgspec.msgpack.Decoder(Trace)
_strings = msgspec.msgpack.Decoder(list[str])


def messages(conn: Connection, conversation_id: str) -> list[MessageView]:
    rows = conn.execute(
        "SELECT id, role, text, source, citations, trace_id, author, attachments, hlc FROM messages"
        " WHERE conversation_id = ? ORDER BY hlc",
        (conversation_id,),
    ).fetchall()
    return [
        MessageView(id=r[0], role=r[1], text=r[2], source=r[3], citations=_citations.decode(r[4]) if r[4] else [],
                    trace_id=r[5], author=r[6], attachments=_strings.decode(r[7]) if r[7] else [],
                    created_ms=physical_ms(r[8]))
        for r in rows
    ]
