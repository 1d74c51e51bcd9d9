"""The built-in chat model seen through the engine's ``LocalChatModel`` port.

It can be loaded lazily: a node whose upstream LLMs answer never needs the built-in model,
and not loading it keeps about 215 MB out of memory. The first turn that needs it pays the
load (about 0.2 s), which ``estimated_wait_s`` accounts for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from appliance.core.ports import ChatRequest, ChatResult, TokenSink
from appliance.local_model.chat import LocalChat

_LOAD_ESTIMATE_S = 0.5
_DEFAULT_TOKENS_PER_S = 60.0


class BuiltinChatProvider:
    def __init__(self, chat: LocalChat | Callable[[], LocalChat], name: str = "builtin") -> None:
        self._chat = chat if isinstance(chat, LocalChat) else None
        self._load = None if isinstance(chat, LocalChat) else chat
        self._loading = asyncio.Lock()
        self.name = name
        self.model = name
        self.vision = False

    @property
    def loaded(self) -> bool:
        return self._chat is not None

    def estimated_wait_s(self, max_tokens: int) -> float:
        if self._chat is None:
            return _LOAD_ESTIMATE_S + max_tokens / _DEFAULT_TOKENS_PER_S
        return self._chat.estimated_wait_s(max_tokens)

    async def _loaded(self) -> LocalChat:
        if self._chat is None:
            async with self._loading:
                if self._chat is None:
                    assert self._load is not None
                    self._chat = await asyncio.to_thread(self._load)
        return self._chat

    async def complete(self, request: ChatRequest, on_token: TokenSink | None = None) -> ChatResult:
        chat = await self._loaded()
        messages = [{"role": m.role, "content": m.content} for m in request.messages if m.role != "tool"]
        if on_token is None:
            text, tokens = await chat.complete(messages, request.max_tokens, request.temperature)
            return ChatResult(text=text, tokens_out=tokens)
        parts: list[str] = []
        # aclosing: if the visitor goes away (on_token raises), generation stops at once.
        async with contextlib.aclosing(chat.stream(messages, request.max_tokens, request.temperature)) as s:
            async for piece in s:
                parts.append(piece)
                await on_token(piece)
        return ChatResult(text="".join(parts), tokens_out=len(parts))  # about one piece per token
