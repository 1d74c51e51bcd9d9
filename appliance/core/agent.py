"""The dialogue engine: one bot turn, from the visitor's text to a reply and its decision trace.

Order of a turn (see DESIGN.md, "The turn pipeline"): images the route cannot see → handoff;
answer cache; intent (may route to handoff, a canned answer or a tool); rules; retrieval (a
close Q&A pair answers directly; nothing relevant → say so and offer a human); the routed LLM
with tools; then the degradation chain: built-in model (if its queue fits the turn's budget),
an extractive quote, fallback rules, and finally a human (or leave-a-message when no agent is
online). Every decision lands in the Trace. The engine never raises for a provider failure:
the visitor always gets a reply, and ``reply.source`` says which path produced it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

import msgspec

from appliance.core import prompts
from appliance.core.answer_checks import degenerate, first_sentences, grounding, is_refusal
from appliance.core.cache import CACHEABLE_SOURCES, cache_key
from appliance.core.config import KnowledgeConfig
from appliance.core.errors import AllProvidersFailed
from appliance.core.language import detect
from appliance.core.phrases import Phrase, phrase
from appliance.core.ports import (
    ChatMessage,
    ChatRequest,
    ChatRouter,
    ImagePart,
    IntentClassifier,
    KnowledgeBase,
    LocalChatModel,
    ReplyCache,
    TokenSink,
)
from appliance.core.redaction import redact_trace
from appliance.core.retrieval import citations, direct_answer, extract_answer, relevant_hits
from appliance.core.router import StreamInterrupted
from appliance.core.rules import Rule, RuleSet
from appliance.core.tools import REFUSED, Tool, call_tool
from appliance.core.types import Attempt, ChunkHit, Reply, ToolCall, Trace

MAX_TOOL_ROUNDS = 3
MAX_TOOL_CALLS = 8  # tool calls a model may make in one turn; more are refused
HISTORY = 12  # messages of history given to the model
LOCAL_MAX_SENTENCES = 3  # the built-in model's reply is cut to this many distinct sentences
# The passages the built-in model is given, and at most how many characters of them: each
# passage more finds the answer more often, and costs prompt time on the CPU.
LOCAL_PASSAGES = 2
LOCAL_CONTEXT_CHARS = 1500


class IntentAction(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["none", "handoff", "answer", "tool"] = "none"
    answer: str = ""
    answers: dict[str, str] = msgspec.field(default_factory=dict)
    tool: str = ""


class EngineSettings(msgspec.Struct, frozen=True, kw_only=True):
    turn_budget_s: float = 8.0
    knowledge: KnowledgeConfig = msgspec.field(default_factory=KnowledgeConfig)
    low_confidence_handoffs: int = 2
    llm_max_tokens: int = 512
    local_max_tokens: int = 160
    local_min_support: float = 0.6
    temperature: float = 0.2
    # Replace personal data in the trace before it leaves the engine ([privacy] redact_pii).
    redact_traces: bool = False


class TurnInput(msgspec.Struct, kw_only=True):
    conversation_id: str
    text: str
    history: list[ChatMessage] = msgspec.field(default_factory=list)
    images: list[ImagePart] = msgspec.field(default_factory=list)
    low_confidence_streak: int = 0
    agents_online: bool = True
    # The conversation's language (from the visitor's browser); each turn's own text decides first.
    language: str = ""


class Conversation(msgspec.Struct, kw_only=True):
    """What the engine needs to know about a conversation beyond the current message."""

    id: str = msgspec.field(default_factory=lambda: f"conv_{secrets.token_hex(12)}")
    history: list[ChatMessage] = msgspec.field(default_factory=list)
    low_confidence_streak: int = 0
    agents_online: bool = True
    language: str = ""


class Turn(msgspec.Struct, kw_only=True):
    reply: Reply
    trace: Trace
    handoff: bool = False
    low_confidence: bool = False


Next = Callable[[TurnInput, TokenSink | None], Awaitable[Turn]]
Middleware = Callable[[TurnInput, TokenSink | None, Next], Awaitable[Turn]]
FallbackHandler = Callable[[TurnInput, Trace], Awaitable[Reply | None]]


class _Stream:
    """The turn's token sink; closed once a stream broke, so fallbacks don't append to it.

    Whatever reaches the visitor passes a MarkerFilter: the prompt's tags and passage markers
    are taken out even when a model writes them a token at a time."""

    def __init__(self, sink: TokenSink | None) -> None:
        self.sink = sink
        self.open = sink is not None
        self._markers = prompts.MarkerFilter()

    async def __call__(self, text: str) -> None:
        if self.open and self.sink is not None and (shown := self._markers.feed(text)):
            await self.sink(shown)

    async def finish(self) -> None:
        if self.open and self.sink is not None and (rest := self._markers.flush()):
            await self.sink(rest)


class _Clock:
    def __init__(self, budget_s: float) -> None:
        self.start = time.perf_counter()
        self.deadline = time.monotonic() + budget_s

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


class Agent:
    def __init__(
        self, *, router: ChatRouter | None = None, local_model: LocalChatModel | None = None,
        knowledge: KnowledgeBase | None = None, intents: IntentClassifier | None = None,
        intent_actions: dict[str, IntentAction] | None = None, rules: list[Rule] | None = None,
        caches: list[ReplyCache] | None = None, tools: list[Tool] | None = None,
        fallback_handler: FallbackHandler | None = None, middleware: list[Middleware] | None = None,
        settings: EngineSettings | None = None,
    ) -> None:
        self.router = router
        self.local_model = local_model
        self.knowledge = knowledge
        self.intents = intents
        self.intent_actions = intent_actions or {}
        all_rules = rules or []
        self._rules = RuleSet([r for r in all_rules if r.stage == "always"])
        self._fallback_rules = RuleSet([r for r in all_rules if r.stage == "fallback"])
        self.caches = caches or []
        self.tools = {tool.name: tool for tool in tools or []}
        self.fallback_handler = fallback_handler
        self.settings = settings or EngineSettings()
        run: Next = self._run
        for layer in reversed(middleware or []):
            run = _wrap(layer, run)
        self._pipeline = run

    async def process(
        self, conversation: Conversation, text: str, *, images: list[ImagePart] | None = None,
        on_token: TokenSink | None = None,
    ) -> Turn:
        """Answer one visitor message; tokens go to ``on_token`` as they are produced.

        The turn (visitor text and bot reply) is appended to ``conversation.history`` and the
        low-confidence streak updated, so an in-process caller can simply keep the object.
        """
        turn = TurnInput(conversation_id=conversation.id, text=text, history=conversation.history[-HISTORY:],
                         images=images or [], low_confidence_streak=conversation.low_confidence_streak,
                         agents_online=conversation.agents_online, language=conversation.language)
        result = await self._pipeline(turn, on_token)
        # The text as the pipeline saw it: after middleware such as PII redaction.
        conversation.history.extend([ChatMessage(role="user", content=result.trace.text),
                                     ChatMessage(role="assistant", content=result.reply.text)])
        conversation.low_confidence_streak = conversation.low_confidence_streak + 1 if result.low_confidence else 0
        return result

    async def stream(
        self, conversation: Conversation, text: str, *, images: list[ImagePart] | None = None
    ) -> AsyncIterator[str | Turn]:
        """Yield reply tokens as they come, then the finished Turn."""
        tokens: asyncio.Queue[str | None] = asyncio.Queue()

        async def sink(token: str) -> None:
            tokens.put_nowait(token)

        task = asyncio.ensure_future(self.process(conversation, text, images=images, on_token=sink))
        task.add_done_callback(lambda _: tokens.put_nowait(None))
        try:
            while (token := await tokens.get()) is not None:
                yield token
            yield await task
        finally:
            task.cancel()

    async def aclose(self) -> None:
        """Release the router's providers (HTTP sessions the agent opened) and a knowledge base
        that holds resources (one with an ``aclose``, such as the SDK's files)."""
        if self.router is not None:
            await self.router.aclose()
        close = getattr(self.knowledge, "aclose", None)
        if close is not None:
            await close()

    # -- the pipeline -------------------------------------------------------------------

    async def _run(self, turn: TurnInput, on_token: TokenSink | None) -> Turn:
        clock = _Clock(self.settings.turn_budget_s)
        trace = Trace(
            trace_id=f"tr_{secrets.token_hex(12)}", conversation_id=turn.conversation_id,
            created_ms=time.time_ns() // 1_000_000, text=turn.text, language=detect(turn.text, turn.language),
        )
        stream = _Stream(on_token)
        result = await self._decide(turn, trace, clock, stream)
        await stream.finish()
        if (shown := prompts.strip_markers(result.reply.text)) != result.reply.text:
            result.reply = msgspec.structs.replace(result.reply, text=shown)  # a cached Reply is shared
        trace.source = result.reply.source
        trace.timings_ms["total"] = _ms(clock.start)
        if self.settings.redact_traces:
            redact_trace(trace)
        return result

    async def _decide(self, turn: TurnInput, trace: Trace, clock: _Clock, on_token: TokenSink | None) -> Turn:
        if turn.images and (self.router is None or not self.router.supports_vision(turn.conversation_id)):
            return self._handoff(turn, trace, "image sent and the routed model has no vision", "image_handoff")

        kb_version = await self.knowledge.version() if self.knowledge else 0
        route = self.router.route_key(turn.conversation_id) if self.router else "local"
        key = cache_key(turn.text, kb_version, f"{prompts.GROUNDED.id}@{prompts.GROUNDED.version}", route,
                        self.intents.version if self.intents else "")
        cacheable = not turn.images and not turn.history  # a follow-up's answer depends on its context
        if cacheable and (cached := await self._cache_get(key, trace)) is not None:
            await _emit(on_token, cached.text)
            return Turn(reply=cached, trace=trace)

        intent_name = await self._classify(turn, trace)
        if (early := await self._act_on_intent(turn, trace, intent_name, on_token)) is not None:
            return early
        if (ruled := await self._apply_rule(self._rules.match(turn.text, intent_name), turn, trace, on_token)):
            return ruled

        relevant = await self._retrieve(turn, trace)
        if (best := direct_answer(turn.text, relevant, self.settings.knowledge)) is not None:
            reply = Reply(text=best.answer, source="knowledge_qa", citations=citations([best]))
            await _emit(on_token, reply.text)
            return await self._finish(Turn(reply=reply, trace=trace), key if cacheable else None)
        if kb_version and not relevant and trace.intent is None:
            return await self._no_answer(turn, trace, "nothing relevant in the knowledge base", on_token)

        store_key = key if cacheable else None
        if (answered := await self._ask_llm(turn, trace, clock, relevant, on_token)) is not None:
            return await self._finish(answered, store_key)
        if (local := await self._ask_local(turn, trace, clock, relevant, on_token)) is not None:
            return await self._finish(local, store_key)
        return await self._degrade(turn, trace, relevant, on_token)

    async def _no_answer(self, turn: TurnInput, trace: Trace, why: str, on_token: TokenSink | None) -> Turn:
        """The knowledge base has no answer: say so, and hand off once it happened too often in a row."""
        trace.fallbacks.append(why)
        streak = turn.low_confidence_streak + 1
        if streak >= self.settings.low_confidence_handoffs:
            return self._handoff(turn, trace, f"low confidence {streak} turns in a row", "handoff")
        reply = Reply(text=phrase("no_answer", trace.language), source="no_answer")
        await _emit(on_token, reply.text)
        return Turn(reply=reply, trace=trace, low_confidence=True)

    async def _degrade(
        self, turn: TurnInput, trace: Trace, relevant: list[ChunkHit], on_token: TokenSink | None
    ) -> Turn:
        # A quote is verbatim, so only a passage in the visitor's language can give one.
        quotable = next((hit for hit in relevant if detect(hit.text) == trace.language), None)
        if quotable is not None and (quote := extract_answer(turn.text, quotable)):
            reply = Reply(text=quote, source="extractive", citations=citations([quotable]))
            trace.fallbacks.append(f"extractive answer from {quotable.chunk_id}")
            await _emit(on_token, reply.text)
            return Turn(reply=reply, trace=trace)
        if (ruled := await self._apply_rule(self._fallback_rules.match(turn.text, trace.intent), turn, trace,
                                            on_token)):
            return ruled
        if self.fallback_handler is not None and (handled := await self.fallback_handler(turn, trace)):
            trace.fallbacks.append("fallback handler answered")
            await _emit(on_token, handled.text)
            return Turn(reply=handled, trace=trace)
        return self._handoff(turn, trace, "degradation chain exhausted", "handoff")

    # -- steps --------------------------------------------------------------------------

    async def _cache_get(self, key: str, trace: Trace) -> Reply | None:
        if not self.caches:
            return None
        started = time.perf_counter()
        trace.cache = "miss"
        try:
            for level in self.caches:
                try:
                    reply = await level.get(key)
                except Exception as exc:  # a cache outage must never fail a turn
                    trace.fallbacks.append(f"cache {level.name} unavailable: {type(exc).__name__}")
                    continue
                if reply is not None:
                    trace.cache = level.name
                    return reply
            return None
        finally:
            trace.timings_ms["cache"] = _ms(started)

    async def _finish(self, turn: Turn, key: str | None) -> Turn:
        trace = turn.trace
        answered_by_route = all(a.provider == trace.route for a in trace.attempts)
        if key is not None and turn.reply.source in CACHEABLE_SOURCES and answered_by_route:
            for level in self.caches:
                try:
                    await level.put(key, turn.reply)
                except Exception as exc:
                    turn.trace.fallbacks.append(f"cache {level.name} write failed: {type(exc).__name__}")
        return turn

    async def _classify(self, turn: TurnInput, trace: Trace) -> str | None:
        if self.intents is None:
            return None
        started = time.perf_counter()
        match = await self.intents.classify(turn.text)
        trace.timings_ms["intent"] = _ms(started)
        trace.intent_confidence = round(match.confidence, 4)
        trace.intent = match.name if match.in_scope else None
        return trace.intent

    async def _act_on_intent(
        self, turn: TurnInput, trace: Trace, intent: str | None, on_token: TokenSink | None
    ) -> Turn | None:
        action = self.intent_actions.get(intent or "")
        if action is None or action.kind == "none":
            return None
        if action.kind == "handoff":
            return self._handoff(turn, trace, f"intent {intent}", "handoff")
        if action.kind == "answer":
            text = action.answers.get(trace.language) or action.answer
        else:
            text = await self._run_tool(action.tool, turn, trace)
        reply = Reply(text=text, source="intent")
        await _emit(on_token, reply.text)
        return Turn(reply=reply, trace=trace)

    async def _apply_rule(
        self, rule: Rule | None, turn: TurnInput, trace: Trace, on_token: TokenSink | None
    ) -> Turn | None:
        if rule is None:
            return None
        trace.rules_fired.append(rule.name)
        if rule.action == "handoff":
            return self._handoff(turn, trace, f"rule {rule.name}", "handoff")
        if rule.action == "answer":
            text = rule.answers.get(trace.language) or rule.answer
        else:
            text = await self._run_tool(rule.tool, turn, trace)
        reply = Reply(text=text, source="rule")
        await _emit(on_token, reply.text)
        return Turn(reply=reply, trace=trace)

    async def _run_tool(self, name: str, turn: TurnInput, trace: Trace) -> str:
        started = time.perf_counter()
        result, error = await call_tool(self.tools, name, msgspec.json.encode({"text": turn.text}).decode(),
                                        check_schema=False)
        trace.tool_calls.append(ToolCall(name=name, arguments=turn.text, result=result, error=error,
                                         latency_ms=_ms(started)))
        return result if not error else phrase("tool_failed", trace.language)

    async def _retrieve(self, turn: TurnInput, trace: Trace) -> list[ChunkHit]:
        if self.knowledge is None:
            return []
        started = time.perf_counter()
        hits = await self.knowledge.search(turn.text, self.settings.knowledge.top_k)
        trace.timings_ms["retrieval"] = _ms(started)
        trace.chunks = hits
        return relevant_hits(turn.text, hits, self.settings.knowledge)

    async def _ask_llm(
        self, turn: TurnInput, trace: Trace, clock: _Clock, relevant: list[ChunkHit], on_token: TokenSink | None
    ) -> Turn | None:
        if self.router is None:
            return None
        started = time.perf_counter()
        template = prompts.GROUNDED
        trace.template_id, trace.template_version = template.id, template.version
        user = ChatMessage(role="user", content=turn.text, images=turn.images)
        messages = prompts.build_messages(template, relevant, turn.history, user)
        tools = [tool.openai_schema() for tool in self.tools.values()]
        # Leave the built-in model the time it needs, so a slow upstream cannot starve the fallback.
        reserve = 0.0
        if self.local_model is not None:
            reserve = min(self.local_model.estimated_wait_s(self.settings.local_max_tokens),
                          self.settings.turn_budget_s / 2)
        deadline = clock.deadline - reserve
        try:
            for _ in range(MAX_TOOL_ROUNDS):
                request = ChatRequest(messages=messages, max_tokens=self.settings.llm_max_tokens,
                                      temperature=self.settings.temperature, tools=tools)
                outcome = await self.router.complete(turn.conversation_id, request, on_token, deadline)
                trace.attempts.extend(outcome.attempts)
                trace.route, trace.arm = outcome.model, outcome.arm
                trace.tokens_in += outcome.result.tokens_in
                trace.tokens_out += outcome.result.tokens_out
                if not outcome.result.tool_calls:
                    break
                messages = [*messages, ChatMessage(role="assistant", content=outcome.result.text, tool_calls=[
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in outcome.result.tool_calls
                ])]
                for call in outcome.result.tool_calls:
                    began = time.perf_counter()
                    if len(trace.tool_calls) >= MAX_TOOL_CALLS:
                        result, error = "", f"{REFUSED}more than {MAX_TOOL_CALLS} tool calls in one turn"
                    else:  # refused unless the tool is configured and the arguments fit its schema
                        result, error = await call_tool(self.tools, call.name, call.arguments)
                    trace.tool_calls.append(ToolCall(name=call.name, arguments=call.arguments, result=result,
                                                     error=error, latency_ms=_ms(began)))
                    messages.append(ChatMessage(role="tool", tool_call_id=call.id,
                                                content=prompts.neutralize(result or error)))
        except AllProvidersFailed as failure:
            attempts = [a for a in failure.attempts if isinstance(a, Attempt)]
            trace.attempts.extend(attempts)
            if not attempts:
                trace.fallbacks.append("no LLM provider configured")
            else:
                hops = ", ".join(f"{a.provider} {a.error_kind or a.status}" for a in attempts)
                trace.fallbacks.append(f"LLM providers failed ({hops})")
            if isinstance(failure, StreamInterrupted) and isinstance(on_token, _Stream):
                # The visitor saw part of an answer: the final reply (not streamed) replaces it.
                trace.fallbacks.append("answer cut off mid-stream; the fallback reply replaces it")
                on_token.open = False
            return None
        finally:
            trace.timings_ms["llm"] = _ms(started)
        reply = Reply(text=prompts.strip_markers(outcome.result.text), source="llm", citations=citations(relevant))
        return Turn(reply=reply, trace=trace)

    async def _ask_local(
        self, turn: TurnInput, trace: Trace, clock: _Clock, relevant: list[ChunkHit], on_token: TokenSink | None
    ) -> Turn | None:
        local = self.local_model
        if local is None:
            return None
        wait = local.estimated_wait_s(self.settings.local_max_tokens)
        if wait > clock.remaining():
            trace.fallbacks.append(f"built-in model skipped: queue needs ~{wait:.1f}s, "
                                   f"{max(clock.remaining(), 0):.1f}s left in the turn budget")
            trace.attempts.append(Attempt(provider=local.name, status="skipped", error_kind="budget"))
            return None
        template = prompts.LOCAL_GROUNDED[trace.language]
        trace.template_id, trace.template_version = template.id, template.version
        given = relevant[:LOCAL_PASSAGES]
        messages = prompts.build_messages(template, given, turn.history[-2:],
                                          ChatMessage(role="user", content=turn.text),
                                          max_context_chars=LOCAL_CONTEXT_CHARS)
        started = time.perf_counter()
        try:
            result = await asyncio.wait_for(
                local.complete(ChatRequest(messages=messages, max_tokens=self.settings.local_max_tokens,
                                           temperature=self.settings.temperature), on_token),
                timeout=max(clock.remaining(), 0.1),
            )
        except (TimeoutError, Exception) as exc:
            kind = "timeout" if isinstance(exc, TimeoutError) else "local_error"
            trace.attempts.append(Attempt(provider=local.name, status="error", error_kind=kind, error=str(exc),
                                          latency_ms=_ms(started)))
            trace.fallbacks.append(f"built-in model failed: {kind}")
            return None
        finally:
            trace.timings_ms["local_model"] = _ms(started)
        trace.attempts.append(Attempt(provider=local.name, model=local.name, arm="local", latency_ms=_ms(started),
                                      tokens_in=result.tokens_in, tokens_out=result.tokens_out))
        trace.route, trace.arm = local.name, "local"
        trace.tokens_in += result.tokens_in
        trace.tokens_out += result.tokens_out
        text = first_sentences(prompts.strip_markers(result.text), LOCAL_MAX_SENTENCES)
        fault = "returned nothing" if not text else None
        if text and is_refusal(text):
            if isinstance(on_token, _Stream):
                on_token.open = False  # the visitor saw it stream: the final reply replaces it
            if relevant and trace.intent is None:
                return await self._no_answer(turn, trace, "built-in model: the passages don't answer", None)
            fault = "said the passages don't answer"
        fault = fault or degenerate(text, turn.text, trace.language)
        if fault is None and given and (support := grounding(text, given)) < self.settings.local_min_support:
            # A small model invents policy details; an answer not backed by the context is dropped.
            fault = f"answer not grounded in the context (support {support:.2f})"
        if fault is not None:
            trace.fallbacks.append(f"built-in model {fault}")
            if isinstance(on_token, _Stream):
                on_token.open = False  # the visitor saw it stream: the final reply replaces it
            return None
        # Cited: the passages that back the answer, the best first (retrieval order breaks ties);
        # the top passage when none does on its own (the answer may combine them).
        backing = {hit.chunk_id: grounding(text, [hit]) for hit in given}
        ranked = sorted(given, key=lambda hit: -backing[hit.chunk_id])
        cited = [hit for hit in ranked if backing[hit.chunk_id] >= self.settings.local_min_support] or ranked[:1]
        return Turn(reply=Reply(text=text, source="local_model", citations=citations(cited)), trace=trace)

    def _handoff(self, turn: TurnInput, trace: Trace, reason: str, text: Phrase) -> Turn:
        trace.handoff_reason = reason
        if not turn.agents_online:
            return Turn(reply=Reply(text=phrase("leave_message", trace.language), source="leave_message"),
                        trace=trace, handoff=True)
        return Turn(reply=Reply(text=phrase(text, trace.language), source="handoff"), trace=trace, handoff=True)


def _wrap(layer: Middleware, inner: Next) -> Next:
    async def wrapped(turn: TurnInput, on_token: TokenSink | None) -> Turn:
        return await layer(turn, on_token, inner)

    return wrapped


async def _emit(on_token: TokenSink | None, text: str) -> None:
    if on_token is not None and text:
        await on_token(text)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
