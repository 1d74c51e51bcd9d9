"""Event payloads: every change to a node's state is one of these, appended to the event log.

The envelope ``(origin, seq, hlc, type, payload)`` lives in the store; ``payload`` is the
msgpack encoding of one of the Structs below, whose tag is the event ``type``. Messages,
traces and audit records are append-only; users, tokens, settings and knowledge-base
documents are last-writer-wins by ``(hlc, origin)``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from appliance.core.types import Message, Trace

UserRole = Literal["admin", "supervisor", "agent"]
TokenRole = Literal["admin", "supervisor", "agent", "api"]


class _Payload(msgspec.Struct, tag_field="t", kw_only=True):
    pass


class VisitorProfile(msgspec.Struct, kw_only=True):
    """What the visitor told us (pre-chat form) and what their browser sent."""

    name: str = ""
    email: str = ""
    ip: str = ""
    user_agent: str = ""
    page: str = ""


class ConversationStarted(_Payload, tag="conversation.started"):
    conversation_id: str
    visitor_id: str
    channel: str = "web"
    language: str = ""
    profile: VisitorProfile = msgspec.field(default_factory=VisitorProfile)


class MessageAdded(_Payload, tag="message.added"):
    message: Message


class TraceRecorded(_Payload, tag="trace.recorded"):
    trace: Trace


class OwnerChanged(_Payload, tag="conversation.owner"):
    """``owner`` is ``bot``, ``queue`` (waiting for a human) or ``agent:<user name>``.

    Entering ``queue`` stamps the time the conversation joined the waiting line (FIFO); any
    owner change clears the assignee unless ``assignee`` names the new one.
    """

    conversation_id: str
    owner: str
    reason: str = ""
    by: str = ""
    assignee: str = ""


class ConversationAssigned(_Payload, tag="conversation.assigned"):
    """The router (or a supervisor) gave a queued conversation to an agent, who then takes it."""

    conversation_id: str
    assignee: str
    by: str = "router"


class ConversationClosed(_Payload, tag="conversation.closed"):
    conversation_id: str
    by: str = ""


class ConversationReopened(_Payload, tag="conversation.reopened"):
    conversation_id: str
    owner: str
    by: str = ""


class RatingGiven(_Payload, tag="conversation.rated"):
    conversation_id: str
    score: int
    comment: str = ""


class TicketCreated(_Payload, tag="ticket.created"):
    """A left message: taken when no agent is online or outside business hours."""

    ticket_id: str
    visitor_id: str
    name: str
    contact: str
    message: str
    conversation_id: str = ""
    language: str = ""


class TicketAnswered(_Payload, tag="ticket.answered"):
    ticket_id: str
    answer: str
    by: str


class UserUpserted(_Payload, tag="user.upserted"):
    user_id: str
    name: str
    role: UserRole
    password_hash: str = ""
    disabled: bool = False
    display_name: str = ""
    capacity: int = 3


class TokenIssued(_Payload, tag="token.issued"):
    token_id: str
    name: str
    role: TokenRole
    token_hash: str
    user_id: str = ""


class TokenRevoked(_Payload, tag="token.revoked"):
    token_id: str


class SettingChanged(_Payload, tag="setting.changed"):
    key: str
    value: bytes


class AuditRecorded(_Payload, tag="audit.recorded"):
    """Who (``actor``, from ``ip``) did ``action`` to ``target``; ``before``/``after`` the state it changed."""

    actor: str
    action: str
    target: str = ""
    detail: str = ""
    ip: str = ""
    before: str = ""
    after: str = ""


class FeedbackGiven(_Payload, tag="feedback.given"):
    message_id: str
    conversation_id: str
    rating: Literal["up", "down"]


class AttachmentStored(_Payload, tag="attachment.stored"):
    """An uploaded image; ``attachment_id`` is the SHA-256 of ``data`` (content-addressed)."""

    attachment_id: str
    media_type: str
    visitor_id: str
    data: bytes


class AttachmentShared(_Payload, tag="attachment.shared"):
    """Another visitor uploaded bytes already stored: they may use them too; the blob is not sent again."""

    attachment_id: str
    visitor_id: str


class KnowledgeChunk(msgspec.Struct, frozen=True, kw_only=True):
    """One chunk of a knowledge-base document as shipped in :class:`DocumentUpserted`.

    ``embedding`` is the vector as little-endian float32 bytes (``dim`` of the event × 4), so
    replicas index it without re-embedding; empty when the chunk has no vector.
    """

    chunk_id: str
    ordinal: int
    section: str = ""
    text: str
    is_qa: bool = False
    answer: str = ""
    embedding: bytes = b""


class DocumentUpserted(_Payload, tag="kb.document.upserted"):
    """A knowledge-base document added or replaced whole (last writer wins by ``(hlc, origin)``).

    ``content_hash`` covers the file bytes and everything that shaped the chunks (chunking
    settings, embedding model), so re-adding an unchanged file is recognised and skipped.
    """

    document_id: str
    source: str
    title: str = ""
    format: str = ""
    content_hash: str = ""
    size_bytes: int = 0
    model: str = ""
    dim: int = 0
    chunks: list[KnowledgeChunk] = msgspec.field(default_factory=list)


class DocumentRemoved(_Payload, tag="kb.document.removed"):
    document_id: str


ErasedKind = Literal["conversation", "visitor", "ticket", "attachment"]


class Erased(_Payload, tag="privacy.erased"):
    """A tombstone: every row and every earlier logged event about ``subject_id`` is deleted.

    Each node applying it (this one, and every paired node it replicates to) deletes the same
    rows and rewrites the earlier events in its log as :class:`Redacted`, and drops events about
    the subject that arrive later. A ``visitor`` tombstone covers what the visitor did up to it
    (by hybrid clock): their conversations, left messages and uploads; a ``conversation`` covers
    its messages, traces, ratings, thumbs, read marks and tickets. ``reason`` is ``retention``
    (older than ``privacy.retention_days``) or ``erasure`` (an admin's request).
    """

    kind: ErasedKind
    subject_id: str
    reason: Literal["retention", "erasure"] = "erasure"


class Redacted(_Payload, tag="redacted"):
    """What an erased event becomes in the log: (origin, seq, hlc) kept, so high-water marks hold;
    applying it does nothing. ``was`` is the event's type before."""

    was: str = ""


class WebhookAdded(_Payload, tag="webhook.added"):
    """A receiver of signed webhooks (replicated: every node delivers its own events to it).

    ``secret`` signs the bodies, so it is kept as given; the admin API and the CLI never show it
    after creation. ``events`` are names from :data:`appliance.core.webhooks.EVENTS`."""

    webhook_id: str
    url: str
    events: list[str]
    secret: str


class WebhookRemoved(_Payload, tag="webhook.removed"):
    webhook_id: str


class IntentExampleAdded(_Payload, tag="intent.example.added"):
    """An admin taught ``intent`` an utterance (see :mod:`appliance.core.intent_examples`); last
    writer wins with :class:`IntentExampleRemoved` per ``(intent, text)``."""

    intent: str
    text: str


class IntentExampleRemoved(_Payload, tag="intent.example.removed"):
    """An example no longer taught, whether it came from the console or the config."""

    intent: str
    text: str


EventPayload = (
    ConversationStarted | MessageAdded | TraceRecorded | OwnerChanged | ConversationAssigned | ConversationClosed
    | ConversationReopened | RatingGiven | TicketCreated | TicketAnswered | UserUpserted
    | TokenIssued | TokenRevoked | SettingChanged | AuditRecorded | FeedbackGiven
    | DocumentUpserted | DocumentRemoved | AttachmentStored | AttachmentShared | Erased | Redacted
    | WebhookAdded | WebhookRemoved | IntentExampleAdded | IntentExampleRemoved
)


def _tags() -> frozenset[str]:
    tags = {t.__struct_config__.tag for t in EventPayload.__args__}
    return frozenset(t for t in tags if isinstance(t, str))


KNOWN_TYPES = _tags()  # every event type this version can apply


def event_type(payload: EventPayload) -> str:
    tag = type(payload).__struct_config__.tag
    assert isinstance(tag, str)
    return tag


_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[EventPayload] = msgspec.msgpack.Decoder(EventPayload)


def encode_payload(payload: EventPayload) -> bytes:
    return _encoder.encode(payload)


def decode_payload(data: bytes) -> EventPayload:
    return _decoder.decode(data)


class Event(msgspec.Struct, frozen=True):
    """One entry of a node's append-only log; ``payload`` bytes are written once and shipped as-is."""

    origin: str
    seq: int
    hlc: int
    type: str
    payload: bytes
