"""The built-in chat model seen through the engine's ``LocalChatModel`` port."""

from __future__ import annotations

import contextlib

from appliance.core.ports import ChatRequest, ChatResult, TokenSink
from appliance.local_model.chat import LocalChat


class BuiltinChatProvider:
    def __init__(self, chat: LocalChat, name: str = "builtin") -> None:
        self._chat = chat
        self.name = name
        self.model = name
        self.vision = False

    def estimated_wait_s(self, max_tokens: int) -> float:
        return self._chat.estimated_wait_s(max_tokens)

    async def complete(self, request: ChatRequest, on_token: TokenSink | None = None) -> ChatResult:
        messages = [{"role": m.role, "content": m.content} for m in request.messages if m.role != "tool"]
        if on_token is None:
            text, tokens = await self._chat.complete(messages, request.max_tokens, request.temperature)
            return ChatResult(text=text, tokens_out=tokens)
        parts: list[str] = []
        # aclosing: if the visitor goes away (on_token raises), generation stops at once.
        async with contextlib.aclosing(self._chat.stream(messages, request.max_tokens, request.temperature)) as s:
            async for piece in s:
                parts.append(piece)
                await on_token(piece)
        return ChatResult(text="".join(parts), tokens_out=len(parts))  # about one piece per token
