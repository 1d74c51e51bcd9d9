"""ModelRouter through the real OpenAIProvider against real mock upstreams on 127.0.0.1.

Assertions are about what the upstream receives and what the visitor gets, not about speed
(``python -m bench.latency`` measures how fast calls fail with every breaker open). Breaker
timings run on a :class:`SteppedClock`, so they are exact and need no waiting.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from appliance.core.errors import AllProvidersFailed
from appliance.core.ports import ChatMessage, ChatProvider, ChatRequest, ImagePart
from appliance.core.router import ModelRouter, StreamInterrupted
from appliance.core.routing import (
    ModelSpec,
    RoutingTable,
    add_model,
    promote,
    rollback,
    set_canary,
    set_fallback,
    use,
)
from appliance.core.traffic import BreakerSettings, Clock, ScaledClock
from appliance.core.types import Attempt
from appliance.providers import OpenAIProvider, make_session
from bench.mock_upstream import MockUpstream
from tests.conftest import max_in_window


def ask(text: str = "Where is my order?", **kw: object) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(role="user", content=text)], **kw)  # type: ignore[arg-type]


def attempts_of(failure: AllProvidersFailed) -> list[Attempt]:
    return [a for a in failure.attempts if isinstance(a, Attempt)]


def soon(seconds: float = 10.0) -> float:
    return time.monotonic() + seconds


class SteppedClock:
    """Time that moves only when the test says so, or by what the router sleeps."""

    def __init__(self) -> None:
        self.t = 1000.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


@pytest.fixture
async def mocks() -> AsyncIterator[dict[str, MockUpstream]]:
    async with MockUpstream() as a, MockUpstream() as b, MockUpstream() as c:
        yield {"a": a, "b": b, "c": c}


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session() as s:
        yield s


RouterFactory = Callable[..., ModelRouter]


@pytest.fixture
def make_router(mocks: dict[str, MockUpstream], session: aiohttp.ClientSession) -> RouterFactory:
    def build(
        *names: str, fallback: tuple[str, ...] = (), clock: Clock | None = None,
        breaker: BreakerSettings | None = None, **spec_kw: object,
    ) -> ModelRouter:
        table = RoutingTable()
        for name in mocks:
            spec = ModelSpec(name=name, base_url=mocks[name].url, model=f"{name}-llm", **spec_kw)  # type: ignore[arg-type]
            table = add_model(table, spec)
        table = set_fallback(use(table, names[0]), list(fallback))

        def factory(spec: ModelSpec) -> ChatProvider:
            return OpenAIProvider(spec, session, api_key=None)

        return ModelRouter(table, factory, clock=clock, rng=random.Random(3), breaker=breaker,
                           backoff_base_s=0.05, backoff_cap_s=0.2)
    return build


async def test_rpm_limit_is_never_exceeded_by_more_than_one_in_any_window(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    factor = 30.0  # a 60 s window passes in 2 real seconds
    router = make_router("a", clock=ScaledClock(factor), rpm=20, max_concurrency=100)
    results = await asyncio.gather(*(
        router.complete(f"conv-{i}", ask(), deadline_s=soon(1000)) for i in range(45)
    ))
    assert all(r.model == "a" for r in results)
    assert mocks["a"].requests == 45
    assert max_in_window(list(mocks["a"].timestamps), 60.0 / factor) <= 20 + 1


async def test_after_the_breaker_opens_the_upstream_receives_only_probes(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    clock = SteppedClock()
    router = make_router("a", fallback=("b",), max_retries=0, clock=clock,
                         breaker=BreakerSettings(consecutive_failures=3, open_s=15, min_calls=1000))

    def state() -> str:
        return router.snapshot().models[0].breaker

    async def visitor(i: int) -> str:
        outcome = await router.complete(f"c{i}", ask(), deadline_s=soon())
        assert outcome.result.text, outcome  # every visitor gets an answer
        return outcome.model

    mocks["a"].set(mode="error")
    assert [await visitor(i) for i in range(3)] == ["b"] * 3
    assert mocks["a"].requests == 3 and state() == "open"

    # Open: 14.5 s of visitors, answered by b at once; nothing is sent to a.
    for i in range(29):
        clock.advance(0.5)
        assert await visitor(10 + i) == "b"
    assert mocks["a"].requests == 3
    assert router.breaker("a").snapshot(clock.now()).rejected_total == 29

    # After open_s it half-opens: the next visitor's call is the one probe. a still fails, so
    # the breaker opens again and that visitor is answered by b.
    clock.advance(0.5)
    assert state() == "half_open"
    assert await visitor(50) == "b"
    assert mocks["a"].requests == 4 and state() == "open"
    assert await visitor(51) == "b" and mocks["a"].requests == 4

    mocks["a"].set(mode="ok")  # the provider recovers: the next probe closes the breaker
    clock.advance(15)
    assert state() == "half_open"
    assert await visitor(60) == "a"
    assert state() == "closed"
    assert [await visitor(61 + i) for i in range(3)] == ["a"] * 3
    snapshot = router.breaker("a").snapshot(clock.now())
    assert (mocks["a"].requests, snapshot.probes_total, snapshot.opened_total) == (8, 2, 2)


async def test_retry_after_is_honoured_by_every_caller(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a")
    mocks["a"].set(mode="rate_limit", retry_after_s=1, times=1)
    first = asyncio.create_task(router.complete("c1", ask(), deadline_s=soon()))
    await asyncio.sleep(0.2)
    second = await router.complete("c2", ask(), deadline_s=soon())
    outcome = await first
    stamps = list(mocks["a"].timestamps)
    assert len(stamps) == 3 and all(t - stamps[0] >= 1.0 for t in stamps[1:])
    assert [a.error_kind for a in outcome.attempts] == ["rate_limited", ""]
    assert outcome.result.text and second.result.text


async def test_rate_limited_model_falls_over_and_is_left_alone_until_retry_after(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a", fallback=("b",))
    mocks["a"].set(mode="rate_limit", retry_after_s=30)
    outcomes = [await router.complete(f"c{i}", ask(), deadline_s=soon()) for i in range(5)]
    assert [o.model for o in outcomes] == ["b"] * 5
    assert mocks["a"].requests == 1  # the others never hit a's rate limit again
    assert outcomes[1].attempts[0].status == "skipped"


@pytest.mark.parametrize(("mode", "kind"), [
    ("error", "server_error"), ("hang", "timeout"), ("drop", "connection"),
    ("context_too_long", "context_too_long"), ("html", "bad_response"),
])
async def test_falls_over_to_the_next_model_by_error_class(
    mocks: dict[str, MockUpstream], make_router: RouterFactory, mode: str, kind: str,
) -> None:
    router = make_router("a", fallback=("b",), timeout_s=0.3, max_retries=1)
    mocks["a"].set(mode=mode)
    outcome = await router.complete("c1", ask("Can I return shoes?"), deadline_s=soon())
    assert outcome.model == "b" and outcome.arm == "fallback"
    assert outcome.result.text == "Mock answer about: Can I return shoes?"
    failed = [a for a in outcome.attempts if a.provider == "a"]
    assert {a.error_kind for a in failed} == {kind}
    retried = kind in ("server_error", "connection")  # cheap errors are retried once before falling over
    assert mocks["a"].requests == (2 if retried else 1)
    metrics = {(m.model, m.arm): m for m in router.snapshot().arms}
    assert metrics["a", "active"].fallbacks == 1 and metrics["b", "fallback"].requests == 1


async def test_streamed_tokens_arrive_in_order_and_concatenate_to_the_final_text(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a")
    mocks["a"].set(mode="slow_stream", chunk_delay_ms=10)
    tokens: list[str] = []

    async def on_token(text: str) -> None:
        tokens.append(text)

    outcome = await router.complete("c1", ask("Do you ship to Norway?"), on_token, deadline_s=soon())
    assert [t.strip() for t in tokens] == outcome.result.text.split()  # word by word, in order
    assert "".join(tokens) == outcome.result.text == "Mock answer about: Do you ship to Norway?"


async def test_a_mid_stream_failure_is_not_repeated_elsewhere(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a", fallback=("b",))
    mocks["a"].set(mode="drop")
    tokens: list[str] = []

    async def on_token(text: str) -> None:
        tokens.append(text)

    with pytest.raises(StreamInterrupted) as cut:
        await router.complete("c1", ask(), on_token, deadline_s=soon())
    assert cut.value.partial_text == "".join(tokens) == "Mock answer"
    assert isinstance(cut.value, AllProvidersFailed)
    assert mocks["a"].requests == 1 and mocks["b"].requests == 0


async def test_images_reach_a_vision_model_and_skip_one_without_vision(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a", fallback=("b",))
    table = router.table
    vision_b = add_model(table, ModelSpec(name="b", base_url=mocks["b"].url, model="vl", vision=True),
                         replace=True)
    router.replace_table(vision_b)
    assert router.supports_vision("c1")
    image = ImagePart(media_type="image/jpeg", data=b"\xff\xd8\xff\xe0jpeg")
    request = ChatRequest(messages=[ChatMessage(role="user", content="Is this cracked?", images=[image])])
    outcome = await router.complete("c1", request, deadline_s=soon())
    assert outcome.model == "b" and mocks["b"].images == 1 and mocks["a"].requests == 0
    assert outcome.result.text.endswith("(I see 1 image)")
    assert outcome.attempts[0].status == "skipped" and "vision" in outcome.attempts[0].error
    router.replace_table(set_fallback(vision_b, []))
    assert not router.supports_vision("c1")


async def test_tool_calls_come_back_parsed(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a")
    mocks["a"].set(mode="tool_call", tool_name="order_status")
    tools = [{"type": "function", "function": {"name": "order_status", "parameters": {"type": "object"}}}]
    outcome = await router.complete("c1", ask("order 77?", tools=tools), deadline_s=soon())
    [call] = outcome.result.tool_calls
    assert call.name == "order_status" and call.arguments == '{"query":"order 77?"}'


async def test_with_every_upstream_down_and_breakers_open_calls_fail_fast(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a", fallback=("b", "c"), max_retries=0, timeout_s=0.2,
                         breaker=BreakerSettings(consecutive_failures=2, open_s=60))
    mocks["a"].set(mode="error")
    mocks["b"].set(mode="hang")
    mocks["c"].set(mode="drop")
    for i in range(2):
        with pytest.raises(AllProvidersFailed):
            await router.complete(f"warm-{i}", ask(), deadline_s=soon())
    assert {m.breaker for m in router.snapshot().models} == {"open"}
    before = sum(m.requests for m in mocks.values())

    async def visitor(i: int) -> None:
        with pytest.raises(AllProvidersFailed) as failure:
            await router.complete(f"visitor-{i}", ask(), deadline_s=soon())
        tried = attempts_of(failure.value)
        assert [(a.provider, a.status, a.error_kind) for a in tried] == [
            ("a", "skipped", "circuit_open"), ("b", "skipped", "circuit_open"), ("c", "skipped", "circuit_open")]

    await asyncio.gather(*(visitor(i) for i in range(50)))
    assert sum(m.requests for m in mocks.values()) == before  # nothing reached the upstreams: nothing to wait for


async def test_an_open_breaker_sends_the_call_straight_to_the_next_model(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a", fallback=("b", "c"), max_retries=0, timeout_s=0.2,
                         breaker=BreakerSettings(consecutive_failures=2, open_s=60))
    mocks["a"].set(mode="error")
    mocks["b"].set(mode="hang")
    for i in range(2):
        assert (await router.complete(f"warm-{i}", ask(), deadline_s=soon())).model == "c"
    assert [m.breaker for m in router.snapshot().models] == ["open", "open", "closed"]
    before = (mocks["a"].requests, mocks["b"].requests)

    async def visitor(i: int) -> None:
        outcome = await router.complete(f"visitor-{i}", ask(f"Question {i}?"), deadline_s=soon())
        assert outcome.model == "c" and outcome.result.text == f"Mock answer about: Question {i}?"
        # The hanging b is skipped, not waited for: no call is sent to it, so no timeout can run.
        assert [(a.provider, a.status, a.error_kind) for a in outcome.attempts] == [
            ("a", "skipped", "circuit_open"), ("b", "skipped", "circuit_open"), ("c", "ok", "")]

    await asyncio.gather(*(visitor(i) for i in range(20)))
    assert (mocks["a"].requests, mocks["b"].requests) == before
    assert mocks["c"].requests == 2 + 20


async def test_the_deadline_bounds_a_hanging_provider(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a", timeout_s=3600)  # the provider's own timeout would wait an hour
    mocks["a"].set(mode="hang")
    with pytest.raises(AllProvidersFailed) as failure:
        await router.complete("c1", ask(), deadline_s=soon(0.5))
    [attempt] = attempts_of(failure.value)
    assert attempt.error_kind == "timeout"
    waited = re.search(r"no answer within ([0-9.]+)s$", attempt.error)
    assert waited and float(waited.group(1)) <= 0.5, attempt.error  # the call was given the turn's time, no more
    assert mocks["a"].requests == 1  # and no retry was started past the deadline


async def test_canary_promote_and_rollback_under_load_lose_no_request(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a", fallback=())
    mocks["a"].set(latency_ms=5)
    mocks["b"].set(latency_ms=5)
    served: list[tuple[str, str, str]] = []
    stop = asyncio.Event()

    async def visitor(i: int) -> None:
        n = 0
        while not stop.is_set():
            conv = f"v{i}-{n % 3}"
            outcome = await router.complete(conv, ask(), deadline_s=soon())
            served.append((conv, outcome.model, outcome.arm))
            n += 1

    load = [asyncio.create_task(visitor(i)) for i in range(20)]
    await asyncio.sleep(0.2)
    router.replace_table(set_canary(router.table, "b", 30))
    await asyncio.sleep(0.2)
    router.replace_table(promote(router.table))
    await asyncio.sleep(0.2)
    router.replace_table(rollback(router.table))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.gather(*load)  # any failed request would raise here
    assert {model for _, model, _ in served} == {"a", "b"}
    assert router.table.active == "a" and router.table.canary is None
    assert all(router.route(conv) == ("a", "active") for conv, _, _ in served)
    arms = {(m.model, m.arm) for m in router.snapshot().arms}
    assert {("a", "active"), ("b", "canary"), ("b", "active")} <= arms


async def test_in_flight_turns_finish_on_the_model_they_started_with(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a")
    mocks["a"].set(latency_ms=300)
    started = [asyncio.create_task(router.complete(f"c{i}", ask(), deadline_s=soon())) for i in range(10)]
    await asyncio.sleep(0.1)
    router.replace_table(use(router.table, "b"))
    later = await router.complete("late", ask(), deadline_s=soon())
    assert {o.model for o in await asyncio.gather(*started)} == {"a"}
    assert later.model == "b"


async def test_snapshot_reports_per_model_and_arm_metrics_and_feedback(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a", fallback=("b",), max_retries=0)
    for i in range(4):
        await router.complete(f"c{i}", ask(), deadline_s=soon())
    mocks["a"].set(mode="error", times=1)
    await router.complete("c9", ask(), deadline_s=soon())
    router.record_feedback("a", "active", "down")
    router.record_feedback("a", "active", "up")
    router.record_feedback("a", "active", "up", previous="up")  # a repeated rating counts once
    snap = router.snapshot()
    arms = {(m.model, m.arm): m for m in snap.arms}
    a = arms["a", "active"]
    assert (a.requests, a.errors, a.fallbacks) == (5, 1, 1)
    assert a.tokens_in > 0 and a.tokens_out == 4 * 7
    assert 0 < a.latency_p50_ms <= a.latency_p99_ms
    assert a.thumbs_down_rate == 0.5
    assert arms["b", "fallback"].requests == 1
    assert snap.active == "a" and snap.fallback == ["b"]
    assert [m.breaker for m in snap.models] == ["closed", "closed", "closed"]


async def test_route_key_changes_when_the_model_behind_the_route_changes(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a")
    key = router.route_key("c1")
    router.replace_table(use(router.table, "b"))
    assert router.route_key("c1") != key
    table = add_model(router.table, ModelSpec(name="b", base_url=mocks["b"].url, model="other"), replace=True)
    moved = router.route_key("c1")
    router.replace_table(table)
    assert router.route_key("c1") != moved
    with pytest.raises(AllProvidersFailed, match="no model configured"):
        await ModelRouter(RoutingTable(), lambda spec: None).complete("c1", ask())  # type: ignore[arg-type,return-value]


async def test_a_visitor_who_goes_away_mid_stream_does_not_count_against_the_model(
    mocks: dict[str, MockUpstream], make_router: RouterFactory,
) -> None:
    router = make_router("a", fallback=("b",), breaker=BreakerSettings(consecutive_failures=1))

    async def closed_socket(text: str) -> None:
        raise ConnectionResetError("visitor left")

    with pytest.raises(ConnectionResetError):
        await router.complete("c1", ask(), closed_socket, deadline_s=soon())
    assert router.snapshot().models[0].breaker == "closed"
    assert mocks["b"].requests == 0


async def test_a_replaced_provider_is_closed_after_its_last_turn_ends(
    mocks: dict[str, MockUpstream], session: aiohttp.ClientSession,
) -> None:
    closed: list[str] = []

    class ClosingProvider(OpenAIProvider):
        async def aclose(self) -> None:
            closed.append(self.spec.model)

    table = use(add_model(RoutingTable(), ModelSpec(name="a", base_url=mocks["a"].url, model="v1")), "a")
    router = ModelRouter(table, lambda spec: ClosingProvider(spec, session, None))
    mocks["a"].set(latency_ms=300)
    turn = asyncio.create_task(router.complete("c1", ask(), deadline_s=soon()))
    await asyncio.sleep(0.1)
    router.replace_table(add_model(table, ModelSpec(name="a", base_url=mocks["a"].url, model="v2"),
                                   replace=True))
    await asyncio.sleep(0)
    assert closed == []  # still answering on the old provider
    assert (await turn).attempts[0].model == "v1"
    await asyncio.sleep(0.01)
    assert closed == ["v1"]
    await router.aclose()
    assert closed == ["v1", "v2"]
