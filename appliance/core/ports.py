"""The small Protocols through which the pure engine talks to its I/O layers.

Implementations live outside ``core``: OpenAI-compatible HTTP and the built-in llama.cpp model
(``appliance.providers``, ``appliance.local_model``), the SQLite knowledge base and cache
(``appliance.store``), Redis. The engine depends only on these shapes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal, Protocol

import msgspec

from appliance.core.types import Attempt, ChunkHit, Reply

TokenSink = Callable[[str], Awaitable[None]]


class ImagePart(msgspec.Struct, frozen=True, kw_only=True):
    media_type: str
    data: bytes


class ChatMessage(msgspec.Struct, kw_only=True):
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    images: list[ImagePart] = msgspec.field(default_factory=list)
    tool_call_id: str = ""
    tool_calls: list[dict[str, Any]] = msgspec.field(default_factory=list)


class ChatRequest(msgspec.Struct, kw_only=True):
    messages: list[ChatMessage]
    max_tokens: int = 256
    temperature: float = 0.2
    tools: list[dict[str, Any]] = msgspec.field(default_factory=list)
    timeout_s: float = 30.0


class RequestedToolCall(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    arguments: str


class ChatResult(msgspec.Struct, kw_only=True):
    text: str
    tokens_in: int = 0
    tokens_out: int = 0
    tool_calls: list[RequestedToolCall] = msgspec.field(default_factory=list)
    finish_reason: str = "stop"


class ChatProvider(Protocol):
    """One chat model endpoint. ``complete`` streams text to ``on_token`` when given one.

    It raises ``ProviderError`` (classified by ``kind``) on any failure; it never retries:
    retries, limits and breakers are the router's job.
    """

    name: str
    model: str
    vision: bool

    async def complete(self, request: ChatRequest, on_token: TokenSink | None = None) -> ChatResult: ...


class KnowledgeBase(Protocol):
    async def version(self) -> int: ...

    async def search(self, query: str, k: int) -> list[ChunkHit]: ...


class IntentMatch(msgspec.Struct, frozen=True, kw_only=True):
    name: str | None
    confidence: float
    in_scope: bool


class IntentClassifier(Protocol):
    """``version`` changes whenever what it was taught changes: it is part of the answer cache's
    key, so an answer cached before an intent learned a sentence is not served after."""

    @property
    def version(self) -> str: ...

    async def classify(self, text: str) -> IntentMatch: ...


class ReplyCache(Protocol):
    """One level of the answer cache; ``name`` is the level reported in traces."""

    name: Literal["l1", "l2", "l3"]

    async def get(self, key: str) -> Reply | None: ...

    async def put(self, key: str, reply: Reply) -> None: ...


class RouteOutcome(msgspec.Struct, kw_only=True):
    result: ChatResult
    attempts: list[Attempt]
    model: str
    arm: str


class ChatRouter(Protocol):
    """Chooses the model for a conversation and calls it under traffic control.

    ``complete`` raises ``AllProvidersFailed`` (carrying the attempts) when no provider answered.
    """

    def route_key(self, conversation_id: str) -> str: ...

    def supports_vision(self, conversation_id: str) -> bool: ...

    async def complete(
        self, conversation_id: str, request: ChatRequest, on_token: TokenSink | None, deadline_s: float
    ) -> RouteOutcome: ...

    async def aclose(self) -> None: ...


class LocalChatModel(Protocol):
    """The built-in model: one shared, slow resource, so callers check the queue first."""

    name: str

    def estimated_wait_s(self, max_tokens: int) -> float: ...

    async def complete(self, request: ChatRequest, on_token: TokenSink | None = None) -> ChatResult: ...
