"""Middleware wraps every turn: ``async def layer(turn, on_token, call_next) -> Turn``.

A layer may change the turn before calling ``call_next`` (redact it, say), look at or change the
Turn that comes back, or answer without calling ``call_next`` at all. Layers run in the order
given to the builder, the first outermost. Three ship as examples: logging, audit and PII
redaction.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import msgspec

from appliance.core.agent import Middleware, Next, Turn, TurnInput
from appliance.core.ports import TokenSink
from appliance.core.redaction import redact


async def pii_redaction(turn: TurnInput, on_token: TokenSink | None, call_next: Next) -> Turn:
    """Neither the models, the cache nor the trace ever see the visitor's personal numbers."""
    history = [msgspec.structs.replace(m, content=redact(m.content)) for m in turn.history]
    redacted = msgspec.structs.replace(turn, text=redact(turn.text), history=history)
    return await call_next(redacted, on_token)


def logging_middleware(logger: logging.Logger | None = None, level: int = logging.INFO) -> Middleware:
    log = logger or logging.getLogger("appliance.turns")

    async def layer(turn: TurnInput, on_token: TokenSink | None, call_next: Next) -> Turn:
        result = await call_next(turn, on_token)
        log.log(level, "turn %s conversation=%s source=%s intent=%s total_ms=%.1f", result.trace.trace_id,
                 turn.conversation_id, result.reply.source, result.trace.intent,
                 result.trace.timings_ms.get("total", 0.0))
        return result

    return layer


AuditSink = Callable[[str, str, str], Awaitable[None]]


def audit_middleware(sink: AuditSink) -> Middleware:
    """Report every handoff and every answer produced without a model to ``sink(action, conversation, detail)``."""

    async def layer(turn: TurnInput, on_token: TokenSink | None, call_next: Next) -> Turn:
        result = await call_next(turn, on_token)
        if result.handoff:
            await sink("turn.handoff", turn.conversation_id, result.trace.handoff_reason)
        elif result.reply.source in ("rule", "intent", "extractive"):
            await sink(f"turn.{result.reply.source}", turn.conversation_id, result.trace.trace_id)
        return result

    return layer
