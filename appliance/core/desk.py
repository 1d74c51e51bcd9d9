"""The desk's data model: what the console and the widget are shown about conversations,
visitors, agents and tickets. Shared by the store's queries, the HTTP API and the WebSockets."""

from __future__ import annotations

from typing import Literal

import msgspec

from appliance.core.events import UserRole, VisitorProfile
from appliance.core.types import Message

Presence = Literal["online", "away", "offline"]
InboxFilter = Literal["mine", "queue", "bot", "open", "resolved"]


class ConversationSummary(msgspec.Struct, kw_only=True):
    """One row of the inbox. ``subject`` is the visitor's first message."""

    id: str
    visitor_id: str
    subject: str = ""
    visitor_name: str = ""
    owner: str = "bot"
    assignee: str = ""
    status: str = "open"
    language: str = ""
    last_text: str = ""
    last_role: str = ""
    started_ms: int = 0
    updated_ms: int = 0
    unread: int = 0
    position: int = 0


class VisitorPanel(msgspec.Struct, kw_only=True):
    visitor_id: str
    profile: VisitorProfile
    language: str = ""
    past: list[ConversationSummary] = msgspec.field(default_factory=list)


class Rating(msgspec.Struct, kw_only=True):
    score: int
    comment: str = ""


class TraceChunk(msgspec.Struct, kw_only=True):
    document: str
    section: str = ""
    score: float = 0.0


class TraceAttempt(msgspec.Struct, kw_only=True):
    provider: str
    status: str
    error_kind: str = ""
    latency_ms: float = 0.0


class TraceSummary(msgspec.Struct, kw_only=True):
    """What an agent sees beside a bot turn: why the bot said it."""

    trace_id: str
    intent: str | None = None
    intent_confidence: float | None = None
    cache: str = "off"
    rules: list[str] = msgspec.field(default_factory=list)
    chunks: list[TraceChunk] = msgspec.field(default_factory=list)
    model: str = ""
    arm: str = ""
    source: str = ""
    fallbacks: list[str] = msgspec.field(default_factory=list)
    attempts: list[TraceAttempt] = msgspec.field(default_factory=list)
    handoff_reason: str = ""
    superseded_by: str = ""
    total_ms: float = 0.0


class ConversationDetail(msgspec.Struct, kw_only=True):
    conversation: ConversationSummary
    messages: list[Message]
    traces: dict[str, TraceSummary]
    visitor: VisitorPanel
    rating: Rating | None = None


class User(msgspec.Struct, kw_only=True):
    name: str
    display_name: str = ""
    role: UserRole = "agent"
    capacity: int = 3
    disabled: bool = False
    presence: Presence = "offline"
    load: int = 0


class Ticket(msgspec.Struct, kw_only=True):
    id: str
    name: str
    contact: str
    message: str
    language: str = ""
    conversation_id: str = ""
    status: str = "open"
    answer: str = ""
    answered_by: str = ""
    created_ms: int = 0


class VisitorStatus(msgspec.Struct, kw_only=True):
    """What the widget shows about the conversation's state: who answers, the queue, the hours."""

    conversation_id: str
    owner: Literal["bot", "queue", "agent"]
    status: str = "open"
    position: int = 0
    wait_s: int = 0
    agent: str = ""
    agents_online: bool = False
    open_now: bool = True
    rated: bool = False


class CannedReply(msgspec.Struct, kw_only=True):
    shortcut: str
    text: str
