"""Versioned prompt templates. The (id, version) pair goes into the trace and the cache key."""

from __future__ import annotations

import msgspec

from appliance.core.ports import ChatMessage
from appliance.core.types import ChunkHit


class PromptTemplate(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    system: str


GROUNDED = PromptTemplate(
    id="grounded-answer",
    version=1,
    system=(
        "You are the customer-service assistant of this company. Answer the customer's last message "
        "using only the numbered CONTEXT passages, citing them like [1]. If the context does not contain "
        "the answer, say that you don't know and offer to connect the customer with a human agent. "
        "Be concise and polite. Reply in the customer's language."
    ),
)

LOCAL_GROUNDED = PromptTemplate(
    id="local-grounded",
    version=1,
    system=(
        "You are a customer-service assistant. Answer in at most two short sentences. Use only facts "
        "from CONTEXT and quote it where you can. If CONTEXT is empty or does not answer the question, "
        "say you are not sure and offer a human agent. Never invent policies, prices or dates."
    ),
)


def context_block(chunks: list[ChunkHit]) -> str:
    if not chunks:
        return "CONTEXT: (none)"
    lines = ["CONTEXT:"]
    for number, chunk in enumerate(chunks, start=1):
        where = f"{chunk.document}" + (f" › {chunk.section}" if chunk.section else "")
        body = f"Q: {chunk.text}\nA: {chunk.answer}" if chunk.is_qa else chunk.text
        lines.append(f"[{number}] ({where})\n{body.strip()}")
    return "\n\n".join(lines)


def build_messages(
    template: PromptTemplate, chunks: list[ChunkHit], history: list[ChatMessage], user: ChatMessage,
    *, max_context_chars: int = 6000,
) -> list[ChatMessage]:
    """System prompt with the retrieved context, then recent history, then the user's message."""
    context = context_block(chunks)[:max_context_chars]
    return [ChatMessage(role="system", content=f"{template.system}\n\n{context}"), *history, user]
