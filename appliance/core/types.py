"""The data model shared by HTTP bodies, stored payloads and the sync wire format.

New fields always get defaults, so nodes of mixed versions interoperate.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec

# "note" is an agent's private note: visitors and models never see it.
Role = Literal["visitor", "bot", "agent", "system", "note"]
Language = Literal["en", "zh"]
# Which path produced a bot reply: an upstream LLM, the built-in model, a knowledge-base Q&A
# pair, an extractive quote, a rule or intent's canned answer, a handoff notice, a leave-a-message
# prompt, or a human agent.
ReplySource = Literal[
    "llm", "local_model", "knowledge_qa", "extractive", "rule", "intent", "handoff", "leave_message",
    "agent", "no_answer",
]
CacheLevel = Literal["off", "miss", "l1", "l2", "l3"]


class Citation(msgspec.Struct, frozen=True, kw_only=True):
    chunk_id: str
    document: str
    section: str = ""
    score: float = 0.0


class Reply(msgspec.Struct, kw_only=True):
    text: str
    source: ReplySource
    citations: list[Citation] = msgspec.field(default_factory=list)


class ChunkHit(msgspec.Struct, frozen=True, kw_only=True):
    chunk_id: str
    document: str
    section: str = ""
    text: str = ""
    score: float = 0.0
    bm25_rank: int | None = None
    bm25_score: float | None = None  # FTS5's BM25, higher is better (its rank's basis)
    vector_rank: int | None = None
    vector_similarity: float | None = None
    is_qa: bool = False
    answer: str = ""


class Attempt(msgspec.Struct, kw_only=True):
    provider: str
    model: str = ""
    arm: str = ""
    status: Literal["ok", "error", "skipped"] = "ok"
    error_kind: str = ""
    error: str = ""
    latency_ms: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0


class ToolCall(msgspec.Struct, kw_only=True):
    name: str
    arguments: str = ""
    result: str = ""
    error: str = ""
    latency_ms: float = 0.0


class Trace(msgspec.Struct, kw_only=True):
    """Why the bot said what it said: every decision of one turn, in order."""

    trace_id: str
    conversation_id: str
    message_id: str = ""
    created_ms: int = 0
    text: str = ""
    intent: str | None = None
    intent_confidence: float | None = None
    rules_fired: list[str] = msgspec.field(default_factory=list)
    cache: CacheLevel = "off"
    chunks: list[ChunkHit] = msgspec.field(default_factory=list)
    template_id: str = ""
    template_version: int = 0
    route: str = ""
    arm: str = ""
    attempts: list[Attempt] = msgspec.field(default_factory=list)
    fallbacks: list[str] = msgspec.field(default_factory=list)
    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    timings_ms: dict[str, float] = msgspec.field(default_factory=dict)
    source: str = ""
    handoff_reason: str = ""
    language: str = ""
    # Set when the reply was dropped because a human took the conversation while the bot worked.
    superseded_by: str = ""


class Message(msgspec.Struct, kw_only=True):
    """One message of a conversation: stored (in ``MessageAdded``), shown and replicated as is.

    ``created_ms`` is the writer's wall clock when the message was made; readers of the store
    replace it by the time of the event's hybrid clock, which orders messages across nodes.
    """

    id: str
    conversation_id: str
    role: Role
    text: str
    source: str = ""
    citations: list[Citation] = msgspec.field(default_factory=list)
    trace_id: str = ""
    author: str = ""
    attachments: list[str] = msgspec.field(default_factory=list)
    created_ms: int = msgspec.field(default_factory=lambda: time.time_ns() // 1_000_000)
