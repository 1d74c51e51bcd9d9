"""A trace as the lines of a decision path, for `appliance blame` and the console."""

from __future__ import annotations

from appliance.core.tools import REFUSED
from appliance.core.types import Attempt, ToolCall, Trace


def _attempt(attempt: Attempt) -> str:
    where = attempt.provider + (f" [{attempt.arm}]" if attempt.arm else "")
    if attempt.status == "ok":
        return f"✓ {where} answered in {attempt.latency_ms:.0f} ms, {attempt.tokens_out} tokens"
    if attempt.status == "skipped":
        return f"- {where} skipped: {attempt.error_kind}" + (f" ({attempt.error})" if attempt.error else "")
    detail = f": {attempt.error}" if attempt.error else ""
    return f"✗ {where} {attempt.error_kind or 'error'} after {attempt.latency_ms:.0f} ms{detail}"


def _tool(call: ToolCall) -> str:
    if call.error.startswith(REFUSED):
        return f"✗ tool {call.name} {call.error} (never run)"
    return f"tool {call.name} → {call.error or 'ok'} ({call.latency_ms:.0f} ms)"


def decision_path(trace: Trace) -> list[str]:
    """One line per decision, in the order the engine took them."""
    lines = []
    if trace.intent_confidence is not None:
        lines.append(f"intent {trace.intent or 'out of scope'} ({trace.intent_confidence:.2f})")
    if trace.cache != "off":
        lines.append(f"cache {'hit ' + trace.cache.upper() if trace.cache != 'miss' else 'miss'}")
    lines.extend(f"rule {name} fired" for name in trace.rules_fired)
    if trace.chunks:
        best = ", ".join(f"{c.document}#{c.chunk_id[-6:]} {c.score:.3f}" for c in trace.chunks[:3])
        lines.append(f"retrieved {len(trace.chunks)} chunks: {best}")
    if trace.template_id:
        lines.append(f"prompt {trace.template_id} v{trace.template_version}")
    lines.extend(_attempt(a) for a in trace.attempts)
    lines.extend(_tool(call) for call in trace.tool_calls)
    lines.extend(f"fallback: {reason}" for reason in trace.fallbacks)
    if trace.handoff_reason:
        lines.append(f"handoff: {trace.handoff_reason}")
    total = trace.timings_ms.get("total")
    stages = " ".join(f"{k}={v:.0f}ms" for k, v in trace.timings_ms.items() if k != "total")
    lines.append(f"→ {trace.source}" + (f" in {total:.0f} ms" if total is not None else "") +
                 (f" ({stages})" if stages else ""))
    return lines
