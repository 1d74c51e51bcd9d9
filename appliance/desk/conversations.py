"""The visitor's side of a conversation: one turn end to end, asking for a person, leaving a
message, rating, uploads and history.

A turn is written in two steps: the visitor's message is durable before the bot starts (so a
crash mid-answer loses no customer words), then the bot's reply, its trace and any change of
owner are written together, in a transaction that first checks the conversation is still the
bot's. If a human took it over while the bot was working, the reply is dropped (its trace says
so) and never shown. A handoff never moves a conversation a human already owns.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Literal

import msgspec

from appliance.core import events as ev
from appliance.core.agent import Agent, Conversation
from appliance.core.errors import AuthError, Conflict, InputError, NotFound, Resolved, TooLarge
from appliance.core.images import ImageCleaner
from appliance.core.language import detect, normalize
from appliance.core.phrases import phrase
from appliance.core.ports import ImagePart, TokenSink
from appliance.core.tokens import VisitorTokens, new_id
from appliance.core.types import Message, Reply, Trace
from appliance.desk.frames import ChatOutcome
from appliance.desk.switchboard import Switchboard
from appliance.store import Connection, Store, WriteTxn, desk

HISTORY_TURNS = 6
MAX_ATTACHMENTS = 4
CLOSED = "this conversation has been resolved; start a new conversation to write again"


class AttachmentOut(msgspec.Struct, kw_only=True):
    attachment_id: str
    media_type: str
    size: int


class Conversations:
    def __init__(
        self, store: Store, agent: Callable[[], Agent], tokens: VisitorTokens, switchboard: Switchboard, *,
        max_text_chars: int, max_image_bytes: int = 5_242_880, images: ImageCleaner | None = None,
    ) -> None:
        self._store = store
        self._agent = agent
        self._tokens = tokens
        self._switchboard = switchboard
        self._max_text_chars = max_text_chars
        self._max_image_bytes = max_image_bytes
        self._cleaner = images or ImageCleaner()

    def visitor(self, token: str | None) -> str | None:
        return None if not token else self._tokens.verify(token, time.time())

    async def thread(self, visitor_id: str) -> tuple[str | None, str]:
        """(the visitor's open conversation or None, a visitor token): how a caller that names
        its visitor itself (the OpenAI-compatible API) continues where it left off."""
        conversation_id = await self._store.read(lambda c: desk.open_conversation(c, visitor_id))
        return conversation_id, self._tokens.issue(visitor_id, time.time())

    def _identify(self, visitor_token: str | None, conversation_id: str | None) -> tuple[str, str]:
        """(visitor id, token): a new visitor gets a signed token with their first message."""
        visitor_id = self.visitor(visitor_token)
        if conversation_id is not None and visitor_id is None:
            raise AuthError("a visitor_token is required to continue a conversation")
        if visitor_id is None:
            visitor_id = new_id("vis")
            return visitor_id, self._tokens.issue(visitor_id, time.time())
        return visitor_id, visitor_token or ""

    def _check_text(self, text: str, limit: int | None = None) -> str:
        text = text.strip()
        limit = limit or self._max_text_chars
        if len(text) > limit:
            raise TooLarge(f"text is {len(text)} characters; the limit is {limit}")
        return text

    async def chat(
        self, text: str, *, conversation_id: str | None, visitor_token: str | None,
        attachments: list[str] | None = None, on_token: TokenSink | None = None, language: str | None = None,
        profile: ev.VisitorProfile | None = None,
    ) -> ChatOutcome:
        text = self._check_text(text)
        if not text and not attachments:
            raise InputError("text must not be empty")
        visitor_id, token = self._identify(visitor_token, conversation_id)
        images = await self._images(attachments or [], visitor_id) if attachments else []
        first = conversation_id is None
        language = normalize(language) or ""
        if conversation_id is None:
            conversation_id = new_id("conv")
            history, streak, owner = [], 0, "bot"
            language = language or detect(text)
        else:
            cid = conversation_id

            def load(conn: Connection) -> tuple[list, int, str, str]:  # type: ignore[type-arg]
                row = desk.visitor_row(conn, cid, visitor_id)
                if row.status != "open":
                    raise Resolved(CLOSED)
                history, streak = desk.bot_history(conn, cid, HISTORY_TURNS)
                return history, streak, row.owner, row.language

            history, streak, owner, stored_language = await self._store.read(load)
            language = stored_language or language
        visitor_message = Message(id=new_id("msg"), conversation_id=conversation_id, role="visitor", text=text,
                                  attachments=attachments or [])
        started = [ev.ConversationStarted(conversation_id=conversation_id, visitor_id=visitor_id, language=language,
                                          profile=profile or ev.VisitorProfile())] if first else []
        await self._store.append(*started, ev.MessageAdded(message=visitor_message))
        await self._switchboard.notify(conversation_id, "created" if first else "message", visitor_message)

        if owner != "bot":
            return ChatOutcome(conversation_id=conversation_id, message_id=visitor_message.id,
                               visitor_token=token, reply=None, trace_id="", owner="human",
                               visitor_message_id=visitor_message.id)

        conversation = Conversation(id=conversation_id, history=history, low_confidence_streak=streak,
                                    agents_online=self._switchboard.humans_available(), language=language)
        turn = await self._agent().process(conversation, text, images=images, on_token=on_token)
        reply_id = new_id("msg")
        turn.trace.message_id = reply_id
        reply = Message(id=reply_id, conversation_id=conversation_id, role="bot", text=turn.reply.text,
                        source=turn.reply.source, citations=turn.reply.citations, trace_id=turn.trace.trace_id)
        stored = await self._store.write(_bot_reply(reply, turn.trace, turn.handoff))
        if not stored:
            return ChatOutcome(conversation_id=conversation_id, message_id=visitor_message.id,
                               visitor_token=token, reply=None, trace_id=turn.trace.trace_id, owner="human",
                               visitor_message_id=visitor_message.id)
        await self._switchboard.notify(conversation_id, "handoff" if turn.handoff else "message", reply)
        return ChatOutcome(conversation_id=conversation_id, message_id=reply_id, visitor_token=token,
                           reply=turn.reply, trace_id=turn.trace.trace_id,
                           owner="human" if turn.handoff else "bot", visitor_message_id=visitor_message.id)

    async def request_human(self, *, conversation_id: str | None, visitor_token: str | None,
                            language: str | None = None) -> ChatOutcome:
        """The "Talk to a person" button: into the human queue, with the bot saying so."""
        visitor_id, token = self._identify(visitor_token, conversation_id)
        first = conversation_id is None
        cid = conversation_id or new_id("conv")
        wanted = normalize(language) or "en"
        available = self._switchboard.humans_available()
        message_id = new_id("msg")

        def work(txn: WriteTxn) -> Message | None:
            if first:
                txn.append(ev.ConversationStarted(conversation_id=cid, visitor_id=visitor_id, language=wanted))
                row_language = wanted
            else:
                row = desk.visitor_row(txn.conn, cid, visitor_id)
                if row.status != "open":
                    raise Resolved(CLOSED)
                if row.owner != "bot":
                    return None
                row_language = row.language or wanted
            text = phrase("handoff" if available else "leave_message", row_language)
            message = Message(id=message_id, conversation_id=cid, role="bot", text=text,
                              source="handoff" if available else "leave_message")
            txn.append(ev.MessageAdded(message=message))
            txn.append(ev.OwnerChanged(conversation_id=cid, owner="queue", reason="the visitor asked for a person",
                                       by="visitor"))
            return message

        message = await self._store.write(work)
        if message is None:
            return ChatOutcome(conversation_id=cid, message_id="", visitor_token=token, reply=None, trace_id="",
                               owner="human")
        await self._switchboard.notify(cid, "handoff", message)
        return ChatOutcome(conversation_id=cid, message_id=message.id, visitor_token=token,
                           reply=Reply(text=message.text, source=message.source), trace_id="",  # type: ignore[arg-type]
                           owner="human")

    async def leave_message(self, *, name: str, contact: str, message: str, visitor_token: str | None,
                            conversation_id: str | None, language: str | None) -> tuple[str, str]:
        """Store a left message as a ticket agents see and answer; returns (ticket id, visitor token)."""
        name, contact, message = self._check_text(name, 200), self._check_text(contact, 200), self._check_text(message)
        missing = [label for label, value in (("name", name), ("contact", contact), ("message", message)) if not value]
        if missing:
            raise InputError(f"a left message needs {', '.join(missing)}")
        visitor_id, token = self._identify(visitor_token, None)
        if conversation_id:
            await self._store.read(lambda c: desk.visitor_row(c, conversation_id, visitor_id))
        ticket_id = new_id("tkt")
        await self._store.append(ev.TicketCreated(
            ticket_id=ticket_id, visitor_id=visitor_id, name=name, contact=contact, message=message,
            conversation_id=conversation_id or "", language=normalize(language) or detect(message)))
        await self._switchboard.ticket_changed(ticket_id)
        return ticket_id, token

    async def rate(self, conversation_id: str, score: int, comment: str, visitor_token: str | None) -> None:
        visitor_id = self._require(visitor_token)
        comment = self._check_text(comment, 2000)

        def work(txn: WriteTxn) -> None:
            row = desk.visitor_row(txn.conn, conversation_id, visitor_id)
            if row.status != "closed":
                raise Conflict("a conversation can be rated once it is resolved")
            txn.append(ev.RatingGiven(conversation_id=conversation_id, score=score, comment=comment))

        await self._store.write(work)
        await self._switchboard.notify(conversation_id, "rated")

    async def history(self, conversation_id: str, visitor_token: str | None) -> list[Message]:
        visitor_id = self._require(visitor_token)

        def read(conn: Connection) -> list[Message]:
            desk.visitor_row(conn, conversation_id, visitor_id)
            return desk.messages(conn, conversation_id, for_visitor=True)

        return await self._store.read(read)

    async def check_visitor(self, conversation_id: str, visitor_token: str | None) -> str:
        visitor_id = self._require(visitor_token)
        await self._store.read(lambda c: desk.visitor_row(c, conversation_id, visitor_id))
        return visitor_id

    def _require(self, visitor_token: str | None) -> str:
        visitor_id = self.visitor(visitor_token)
        if visitor_id is None:
            raise AuthError("send the visitor token as 'Authorization: Bearer <token>'")
        return visitor_id

    async def store_image(self, data: bytes, visitor_token: str | None) -> AttachmentOut:
        visitor_id = self.visitor(visitor_token)
        if visitor_id is None:
            raise AuthError("uploading needs the visitor token as 'Authorization: Bearer <token>'")
        if len(data) > self._max_image_bytes:
            raise TooLarge(f"image is {len(data)} bytes; the limit is {self._max_image_bytes}")
        # Decoded, stripped of metadata and re-encoded on a worker thread (UnsupportedMedia, TooLarge);
        # the address is that of the stored bytes, and re-encoding is deterministic, so the same upload
        # always lands on the same attachment.
        image = await self._cleaner.clean(data)
        attachment_id = hashlib.sha256(image.data).hexdigest()

        def work(txn: WriteTxn) -> None:
            # Content-addressed: the same bytes are stored (and replicated) once, shared by whoever sent them.
            if desk.attachment_stored(txn.conn, attachment_id):
                txn.append(ev.AttachmentShared(attachment_id=attachment_id, visitor_id=visitor_id))
            else:
                txn.append(ev.AttachmentStored(attachment_id=attachment_id, media_type=image.media_type,
                                               visitor_id=visitor_id, data=image.data))

        await self._store.write(work)
        return AttachmentOut(attachment_id=attachment_id, media_type=image.media_type, size=len(image.data))

    async def image(self, attachment_id: str, visitor_token: str | None) -> tuple[str, bytes]:
        visitor_id = self._require(visitor_token)
        found = await self._store.read(lambda c: desk.visitor_attachment(c, attachment_id, visitor_id))
        if found is None:
            raise NotFound(f"attachment {attachment_id} not found")
        return found

    async def _images(self, attachment_ids: list[str], visitor_id: str) -> list[ImagePart]:
        def read(conn: Connection) -> list[ImagePart]:
            parts = []
            for attachment_id in attachment_ids:
                found = desk.visitor_attachment(conn, attachment_id, visitor_id)
                if found is None:
                    raise NotFound(f"attachment {attachment_id} not found")
                parts.append(ImagePart(media_type=found[0], data=found[1]))
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
            found = desk.rated_reply(txn.conn, message_id, visitor_id)
            if found is None:
                raise NotFound(f"bot message {message_id} not found")
            conversation_id, body, previous = found
            if previous != rating:
                txn.append(ev.FeedbackGiven(message_id=message_id, conversation_id=conversation_id, rating=rating))
            return body, previous

        # Read and write in one transaction, so two clicks cannot both count as the first.
        body, previous = await self._store.write(work)
        return (desk.decode_trace(body) if body else None), previous


def _bot_reply(reply: Message, trace: Trace, handoff: bool) -> Callable[[WriteTxn], bool]:
    """Store the bot's reply only if the conversation is still the bot's (checked in the same
    transaction); otherwise keep only the trace, marked superseded."""

    def work(txn: WriteTxn) -> bool:
        row = desk.row(txn.conn, reply.conversation_id)
        if row.owner != "bot" or row.status != "open":
            trace.superseded_by = row.owner if row.status == "open" else "closed"
            trace.message_id = ""
            txn.append(ev.TraceRecorded(trace=trace))
            return False
        txn.append(ev.MessageAdded(message=reply))
        txn.append(ev.TraceRecorded(trace=trace))
        if handoff:
            txn.append(ev.OwnerChanged(conversation_id=reply.conversation_id, owner="queue",
                                       reason=trace.handoff_reason, by="bot"))
        return True

    return work
