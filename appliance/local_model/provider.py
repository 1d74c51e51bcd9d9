"""The built-in chat model seen through the engine's ``LocalChatModel`` port.

It can be loaded lazily: a node whose upstream LLMs answer never needs the built-in model,
and not loading it keeps it out of memory (1.1 GB for the standard model, 0.1 GB for the small
one). The first turn that needs it pays the load (about 3 s for the standard model), which
``estimated_wait_s`` accounts for, with every turn already waiting for it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from appliance.core.ports import ChatRequest, ChatResult, TokenSink
from appliance.local_model.chat import LocalChat

_LOAD_ESTIMATE_S = 3.0
_FIRST_ANSWER_S = 3.5  # before any answer is measured: a prompt of passages and a two-sentence reply


class BuiltinChatProvider:
    def __init__(self, chat: LocalChat | Callable[[], LocalChat], name: str = "builtin") -> None:
        self._chat = chat if isinstance(chat, LocalChat) else None
        self._load = None if isinstance(chat, LocalChat) else chat
        self._loading = asyncio.Lock()
        self._waiting = 0  # turns waiting for the model to load
        self.name = name
        self.model = name
        self.vision = False

    @property
    def loaded(self) -> bool:
        return self._chat is not None

    def estimated_wait_s(self, max_tokens: int) -> float:
        if self._chat is None:  # the turns already waiting for the load go first, one at a time
            return _LOAD_ESTIMATE_S + (self._waiting + 1) * _FIRST_ANSWER_S
        return self._chat.estimated_wait_s(max_tokens)

    async def load(self) -> LocalChat:
        """The model, loaded on a worker thread the first time (once, however many callers wait)."""
        if self._chat is None:
            async with self._loading:
                if self._chat is None:
                    assert self._load is not None
                    self._chat = await asyncio.to_thread(self._load)
        return self._chat

    async def complete(self, request: ChatRequest, on_token: TokenSink | None = None) -> ChatResult:
        self._waiting += 1
        try:
            chat = await self.load()
        finally:
            self._waiting -= 1
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
