"""The model router: one turn's LLM call, routed through the arms, traffic control and fallbacks.

Policy for one call (``ModelRouter.complete``):

- Attempt order: the conversation's arm (active or canary, sticky by hash), then the fallback
  list. A model without vision is skipped for a request carrying images.
- Per model, admission through its :class:`ProviderTraffic` (breaker, concurrency cap, RPM/TPM,
  Retry-After pause). A model whose breaker is open is skipped at once, so with every breaker
  open a call fails in microseconds.
- Retries on the same model, with full-jitter backoff that honours Retry-After: server errors
  and dropped connections; rate limits and timeouts only on the last model in the order (with a
  model still to try, falling over answers the visitor sooner). Waiting for admission or for a
  retry is bounded by ``max_queue_s`` while another model remains, and never passes the deadline.
- Everything else falls over to the next model: rate limit, server error, timeout, connection,
  context too long, circuit open, and bad request (a misconfigured provider must not take the
  bot down).
- Once text has reached ``on_token``, a failure is never retried or sent elsewhere (the visitor
  would see the answer twice): :class:`StreamInterrupted` is raised with the partial text.

Table swaps are atomic; a turn holds the lanes (provider + traffic state) of its whole attempt
order until it ends, and a lane dropped from the table is closed after its last turn ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import msgspec

from appliance.core.errors import AllProvidersFailed, ProviderError
from appliance.core.ports import ChatProvider, ChatRequest, ChatResult, RouteOutcome, TokenSink
from appliance.core.routing import ModelSpec, RoutingTable, attempt_order, choose_arm
from appliance.core.traffic import (
    BreakerSettings,
    CircuitBreaker,
    Clock,
    MonotonicClock,
    ProviderTraffic,
    backoff_delay,
)
from appliance.core.types import Attempt

ProviderFactory = Callable[[ModelSpec], ChatProvider]
# "bad_response" (a body that is no completion) counts against the model's health but is never
# retried on it: the same request would get the same answer.
_HEALTH_FAILURES = frozenset({"rate_limited", "server_error", "timeout", "connection", "bad_response"})
_LATENCY_SAMPLES = 1024


@runtime_checkable
class ClosableProvider(Protocol):
    async def aclose(self) -> None: ...


def _all_failed(attempts: list[Attempt]) -> AllProvidersFailed:
    tried = "; ".join(f"{a.provider}: {a.error_kind or a.status}" for a in attempts)
    return AllProvidersFailed(list(attempts), f"no model answered ({tried or 'no model configured'})")


class StreamInterrupted(AllProvidersFailed):
    """The answer failed after ``partial_text`` had already been streamed to the visitor.

    A subclass so that a caller handling only AllProvidersFailed still degrades; a caller that
    streams should check for it and not stream a second answer as if the first had not begun.
    """

    def __init__(self, attempts: list[Attempt], *, partial_text: str, model: str, arm: str) -> None:
        super().__init__(
            list(attempts), f"model {model!r} failed mid-answer after {len(partial_text)} chars",
        )
        self.partial_text = partial_text
        self.model = model
        self.arm = arm


class ArmMetrics(msgspec.Struct, kw_only=True):
    """Counters for one model in one arm ("active", "canary" or "fallback").

    ``requests``: turns that reached this model in the attempt order (skips by an open breaker or
    a limit included); ``errors``: of those, the ones it did not answer; ``fallbacks``: errors
    after which another model was tried; ``retries``: extra upstream calls; latency covers the
    answered turns, retries included (the last 1,024).
    """

    model: str
    arm: str
    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    retries: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    feedback: int = 0
    thumbs_down: int = 0
    thumbs_down_rate: float = 0.0


class ModelHealth(msgspec.Struct, kw_only=True):
    model: str
    breaker: str
    in_flight: int = 0
    breaker_opened_total: int = 0
    probes_total: int = 0
    rejected_total: int = 0


class RouterSnapshot(msgspec.Struct, kw_only=True):
    active: str | None
    canary: str | None
    canary_percent: float
    fallback: list[str]
    arms: list[ArmMetrics]
    models: list[ModelHealth]


class _ArmStats:
    def __init__(self) -> None:
        self.m = ArmMetrics(model="", arm="")
        self.latencies: deque[float] = deque(maxlen=_LATENCY_SAMPLES)


class _Lane:
    def __init__(self, spec: ModelSpec, provider: ChatProvider, traffic: ProviderTraffic) -> None:
        self.spec = spec
        self.provider = provider
        self.traffic = traffic
        self.holds = 0
        self.retired = False
        self.closed = False


class _Sink:
    """Remembers what reached the visitor, and whether delivering it failed."""

    def __init__(self, on_token: TokenSink) -> None:
        self._on_token = on_token
        self.parts: list[str] = []
        self.error: Exception | None = None

    async def __call__(self, text: str) -> None:
        self.parts.append(text)
        try:
            await self._on_token(text)
        except Exception as exc:
            self.error = exc
            raise


def estimate_tokens(request: ChatRequest) -> int:
    """A rough upper estimate for TPM reservation: ~4 chars a token, images, and the reply cap."""
    chars = sum(len(m.content) for m in request.messages)
    images = sum(len(m.images) for m in request.messages)
    return chars // 4 + 4 * len(request.messages) + 85 * images + request.max_tokens


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class ModelRouter:
    def __init__(
        self, table: RoutingTable, factory: ProviderFactory, *, clock: Clock | None = None,
        rng: random.Random | None = None, breaker: BreakerSettings | None = None,
        backoff_base_s: float = 0.25, backoff_cap_s: float = 8.0, max_queue_s: float = 2.0,
    ) -> None:
        self._factory = factory
        self._clock: Clock = clock or MonotonicClock()
        self._rng = rng or random.Random()
        self._breaker_settings = breaker or BreakerSettings()
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._max_queue_s = max_queue_s
        self._table = RoutingTable()
        self._lanes: dict[str, _Lane] = {}
        self._stats: dict[tuple[str, str], _ArmStats] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._retired: list[_Lane] = []
        self.replace_table(table)

    @property
    def table(self) -> RoutingTable:
        return self._table

    def replace_table(self, table: RoutingTable) -> None:
        """Swap the table live. Unchanged models keep their provider and traffic state; a changed
        or removed model's lane is closed once the turns holding it end. Atomic: if the factory
        raises, nothing changes."""
        lanes: dict[str, _Lane] = {}
        for name, spec in table.models.items():
            old = self._lanes.get(name)
            lanes[name] = old if old is not None and old.spec == spec else self._build_lane(spec)
        for lane in self._lanes.values():
            if lanes.get(lane.spec.name) is not lane:
                lane.retired = True
                self._maybe_close(lane)
        self._lanes = lanes
        self._table = table

    def route(self, conversation_id: str) -> tuple[str, str] | None:
        """The (model, arm) this conversation is routed to now, or None with no active model."""
        if self._table.active is None:
            return None
        return choose_arm(self._table, conversation_id)

    def route_key(self, conversation_id: str) -> str:
        """Names the model that would answer (for cache keys): changes when a switch, canary
        or edit of the model's endpoint could change the answer."""
        order = attempt_order(self._table, conversation_id)
        if not order:
            return "none"
        spec = self._table.models[order[0]]
        endpoint = hashlib.sha256(f"{spec.kind}|{spec.base_url}|{spec.model}".encode()).hexdigest()[:10]
        return f"{spec.name}:{endpoint}"

    def supports_vision(self, conversation_id: str) -> bool:
        """Whether some model in this conversation's attempt order accepts images."""
        models = self._table.models
        return any(models[name].vision for name in attempt_order(self._table, conversation_id))

    async def complete(
        self, conversation_id: str, request: ChatRequest, on_token: TokenSink | None = None,
        deadline_s: float | None = None,
    ) -> RouteOutcome:
        """Answer ``request`` with the first model in the attempt order that succeeds.

        ``deadline_s`` is the turn's absolute deadline on ``time.monotonic()`` (default: now plus
        the request's ``timeout_s``); no wait, retry or call runs past it. Raises
        AllProvidersFailed (every attempt is in ``.attempts``) or :class:`StreamInterrupted`.
        """
        table, lanes = self._table, self._lanes
        budget = request.timeout_s if deadline_s is None else deadline_s - time.monotonic()
        deadline = self._clock.now() + budget
        first, first_arm = choose_arm(table, conversation_id) if table.active is not None else ("", "")
        plan = [
            (lanes[name], first_arm if name == first else "fallback")
            for name in attempt_order(table, conversation_id)
        ]
        for lane, _ in plan:
            lane.holds += 1
        attempts: list[Attempt] = []
        sink = _Sink(on_token) if on_token is not None else None
        if any(m.images for m in request.messages):
            attempts += [self._skipped(lane, arm, "bad_request", "model has no vision")
                         for lane, arm in plan if not lane.spec.vision]
            eligible = [(lane, arm) for lane, arm in plan if lane.spec.vision]
        else:
            eligible = plan
        try:
            for index, (lane, arm) in enumerate(eligible):
                last = index == len(eligible) - 1
                result = await self._try_lane(lane, arm, request, sink, deadline, attempts, last=last)
                if result is not None:
                    return RouteOutcome(result=result, attempts=attempts, model=lane.spec.name, arm=arm)
                if not last:
                    self._arm(lane.spec.name, arm).m.fallbacks += 1
            raise _all_failed(attempts)
        finally:
            for lane, _ in plan:
                lane.holds -= 1
                self._maybe_close(lane)

    async def _try_lane(
        self, lane: _Lane, arm: str, request: ChatRequest, sink: _Sink | None, deadline: float,
        attempts: list[Attempt], *, last: bool,
    ) -> ChatResult | None:
        clock, spec = self._clock, lane.spec
        stats = self._arm(spec.name, arm)
        stats.m.requests += 1
        started = clock.now()
        estimate = estimate_tokens(request)
        for attempt_no in range(spec.max_retries + 1):
            remaining = deadline - clock.now()
            if remaining <= 0:
                attempts.append(self._skipped(lane, arm, "budget", "turn deadline reached"))
                break
            max_wait = remaining if last else min(remaining, self._max_queue_s)
            try:
                admission = await lane.traffic.admit(estimate, max_wait)
            except ProviderError as exc:
                attempts.append(self._skipped(lane, arm, exc.kind, str(exc)))
                break
            sent_at = clock.now()
            call_timeout = min(spec.timeout_s, deadline - sent_at)
            if call_timeout <= 0:
                admission.done("cancelled", tokens_used=0)
                attempts.append(self._skipped(lane, arm, "budget", "turn deadline reached"))
                break
            error: ProviderError
            try:
                call = msgspec.structs.replace(request, timeout_s=call_timeout)
                async with asyncio.timeout(call_timeout):
                    result = await lane.provider.complete(call, sink)
            except asyncio.CancelledError:
                admission.done("cancelled", tokens_used=None)
                raise
            except Exception as exc:
                if sink is not None and sink.error is not None:  # the visitor went away, not the model
                    admission.done("cancelled", tokens_used=None)
                    raise sink.error from None
                if isinstance(exc, ProviderError):
                    error = exc
                elif isinstance(exc, TimeoutError):
                    error = ProviderError("timeout", f"no answer within {call_timeout:.1f}s")
                else:  # a provider bug must not take the turn down
                    error = ProviderError("server_error", f"provider raised {type(exc).__name__}: {exc}")
            else:
                used = result.tokens_in + result.tokens_out
                admission.done("success", tokens_used=used or None)
                latency_ms = (clock.now() - sent_at) * 1000
                attempts.append(self._attempt(lane, arm, "ok", latency_ms=latency_ms, result=result))
                stats.m.tokens_in += result.tokens_in
                stats.m.tokens_out += result.tokens_out
                stats.latencies.append((clock.now() - started) * 1000)
                return result
            health = error.kind in _HEALTH_FAILURES
            admission.done(
                "failure" if health else "neutral",
                tokens_used=None if error.kind in ("timeout", "connection") else 0,
            )
            if error.retry_after_s:  # 429 or 503 with Retry-After: nobody calls it before then
                lane.traffic.pause_for(error.retry_after_s)
            latency_ms = (clock.now() - sent_at) * 1000
            attempts.append(self._attempt(lane, arm, "error", latency_ms=latency_ms, error=error))
            if sink is not None and sink.parts:
                stats.m.errors += 1
                raise StreamInterrupted(attempts, partial_text="".join(sink.parts), model=spec.name, arm=arm)
            retry_here = error.kind in ("server_error", "connection") or (
                last and error.kind in ("rate_limited", "timeout")
            )
            if not retry_here or attempt_no == spec.max_retries:
                break
            base, cap = self._backoff
            delay = backoff_delay(attempt_no, error.retry_after_s, base, cap, self._rng)
            remaining = deadline - clock.now()
            if delay >= remaining or (not last and delay > self._max_queue_s):
                break
            stats.m.retries += 1
            await clock.sleep(delay)
        stats.m.errors += 1
        return None

    def record_feedback(self, model: str, arm: str, rating: str, previous: str | None = None) -> None:
        """Count a reply's latest rating once: a repeated rating changes nothing, a changed one
        moves the reply from one side to the other."""
        if rating == previous:
            return
        stats = self._arm(model, arm)
        if previous is None:
            stats.m.feedback += 1
        stats.m.thumbs_down += (rating == "down") - (previous == "down")

    def snapshot(self) -> RouterSnapshot:
        now = self._clock.now()
        arms = []
        for stats in self._stats.values():
            values = sorted(stats.latencies)
            m = stats.m
            arms.append(msgspec.structs.replace(
                m, latency_p50_ms=_percentile(values, 0.5), latency_p99_ms=_percentile(values, 0.99),
                thumbs_down_rate=m.thumbs_down / m.feedback if m.feedback else 0.0,
            ))
        models = []
        for name, lane in sorted(self._lanes.items()):
            b = lane.traffic.breaker.snapshot(now)
            models.append(ModelHealth(
                model=name, breaker=b.state, in_flight=lane.traffic.in_flight,
                breaker_opened_total=b.opened_total, probes_total=b.probes_total,
                rejected_total=b.rejected_total,
            ))
        t = self._table
        return RouterSnapshot(
            active=t.active, canary=t.canary, canary_percent=t.canary_percent,
            fallback=list(t.fallback), arms=sorted(arms, key=lambda a: (a.model, a.arm)), models=models,
        )

    def breaker(self, name: str) -> CircuitBreaker:
        return self._lanes[name].traffic.breaker

    async def aclose(self) -> None:
        """Close every provider (current and retired) that has a close method."""
        for lane in [*self._lanes.values(), *self._retired]:
            if isinstance(lane.provider, ClosableProvider):
                await lane.provider.aclose()
        self._retired.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _build_lane(self, spec: ModelSpec) -> _Lane:
        traffic = ProviderTraffic(
            rpm=spec.rpm, tpm=spec.tpm, max_concurrency=spec.max_concurrency,
            breaker=CircuitBreaker(self._breaker_settings), clock=self._clock,
        )
        return _Lane(spec, self._factory(spec), traffic)

    def _maybe_close(self, lane: _Lane) -> None:
        if not lane.retired or lane.closed or lane.holds > 0:
            return
        lane.closed = True
        if not isinstance(lane.provider, ClosableProvider):
            return
        try:
            task = asyncio.get_running_loop().create_task(lane.provider.aclose())
        except RuntimeError:  # no loop running (table swapped at startup): close in aclose()
            self._retired.append(lane)
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _arm(self, model: str, arm: str) -> _ArmStats:
        stats = self._stats.get((model, arm))
        if stats is None:
            stats = self._stats[(model, arm)] = _ArmStats()
            stats.m.model, stats.m.arm = model, arm
        return stats

    @staticmethod
    def _attempt(
        lane: _Lane, arm: str, status: str, *, latency_ms: float, result: ChatResult | None = None,
        error: ProviderError | None = None,
    ) -> Attempt:
        return Attempt(
            provider=lane.spec.name, model=lane.spec.model, arm=arm,
            status="ok" if status == "ok" else "error",
            error_kind=error.kind if error else "", error=str(error) if error else "",
            latency_ms=round(latency_ms, 2),
            tokens_in=result.tokens_in if result else 0, tokens_out=result.tokens_out if result else 0,
        )

    @staticmethod
    def _skipped(lane: _Lane, arm: str, kind: str, message: str) -> Attempt:
        return Attempt(
            provider=lane.spec.name, model=lane.spec.model, arm=arm, status="skipped",
            error_kind=kind, error=message,
        )
