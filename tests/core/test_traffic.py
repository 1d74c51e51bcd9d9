"""Traffic control state machines, driven with explicit times (no sleeping) where possible."""

from __future__ import annotations

import asyncio
import random

import pytest

from appliance.core.errors import ProviderError
from appliance.core.traffic import (
    BreakerSettings,
    CircuitBreaker,
    ConcurrencyCap,
    ProviderTraffic,
    ScaledClock,
    TokenBucket,
    backoff_delay,
)
from tests.conftest import max_in_window


def test_bucket_starts_full_and_refills_continuously() -> None:
    bucket = TokenBucket(60, window_s=60.0)  # one token a second
    assert all(bucket.try_acquire(1, now=0.0) for _ in range(60))
    assert not bucket.try_acquire(1, now=0.0)
    assert bucket.wait_time(1, now=0.0) == pytest.approx(1.0)
    assert bucket.wait_time(3, now=0.5) == pytest.approx(2.5)
    assert bucket.try_acquire(1, now=1.0)
    assert bucket.level(now=1000.0) == 60  # capped at burst


def test_paced_rpm_bucket_never_admits_more_than_limit_plus_one_per_window() -> None:
    rng = random.Random(7)
    rpm = 30
    bucket = TokenBucket(rpm, window_s=60.0, burst=1)
    sends: list[float] = []
    now = 0.0
    for _ in range(2000):  # bursts of greedy callers separated by random idle gaps
        now += rng.choice([0.0, 0.0, 0.01, 0.5, 5.0, 90.0])
        sends.append(now + bucket.reserve(1, now))
    assert max_in_window(sends, 60.0) <= rpm + 1
    assert sends == sorted(sends)  # reservations are served first come, first served


def test_reservations_queue_in_debt_and_tpm_settles_with_actual_usage() -> None:
    tpm = TokenBucket(600, window_s=60.0)  # 10 tokens a second, 600 burst
    assert tpm.reserve(500, now=0.0) == 0.0
    assert tpm.reserve(200, now=0.0) == pytest.approx(10.0)  # 100 short: 10 s of refill
    tpm.give_back(300, now=0.0)  # the first call used 200, not 500
    assert tpm.level(now=0.0) == pytest.approx(200)
    tpm.take(150, now=0.0)  # the second used 350, not 200
    assert tpm.level(now=0.0) == pytest.approx(50)
    assert tpm.wait_time(10_000, now=0.0) == pytest.approx(55.0)  # oversized costs clamp to burst


def test_breaker_opens_on_consecutive_failures_and_probes_half_open() -> None:
    breaker = CircuitBreaker(BreakerSettings(consecutive_failures=3, open_s=10.0, half_open_probes=1))
    for _ in range(3):
        ticket = breaker.allow(0.0)
        assert ticket is not None
        breaker.failure(ticket, 0.0)
    assert breaker.state(0.0) == "open"
    assert breaker.allow(5.0) is None
    assert breaker.reopens_in(5.0) == pytest.approx(5.0)

    probe = breaker.allow(10.0)
    assert probe is not None and probe.probe
    assert breaker.state(10.0) == "half_open"
    assert breaker.allow(10.0) is None  # one probe at a time
    breaker.failure(probe, 10.5)
    assert breaker.state(10.5) == "open"  # a failed probe re-opens for a full cool-down
    assert breaker.allow(19.0) is None

    probe = breaker.allow(21.0)
    assert probe is not None
    breaker.success(probe, 21.1)
    assert breaker.state(21.1) == "closed"
    snap = breaker.snapshot(21.1)
    assert (snap.opened_total, snap.probes_total) == (2, 2)
    assert snap.rejected_total == 3


def test_breaker_opens_on_failure_ratio_only_after_min_calls() -> None:
    breaker = CircuitBreaker(BreakerSettings(
        consecutive_failures=100, failure_ratio=0.5, window_s=10.0, min_calls=6,
    ))
    outcomes = [True, False, True, False, True]  # 3 of 5 failed, below min_calls
    for i, failed in enumerate(outcomes):
        ticket = breaker.allow(float(i))
        assert ticket is not None
        (breaker.failure if failed else breaker.success)(ticket, float(i))
    assert breaker.state(5.0) == "closed"
    ticket = breaker.allow(5.0)
    assert ticket is not None
    breaker.failure(ticket, 5.0)  # 4 of 6
    assert breaker.state(5.0) == "open"


def test_breaker_window_forgets_old_failures() -> None:
    breaker = CircuitBreaker(BreakerSettings(consecutive_failures=100, window_s=10.0, min_calls=4))
    for t, failed in [(0.0, True), (1.0, False), (2.0, True), (3.0, True)]:
        ticket = breaker.allow(t)
        assert ticket is not None
        (breaker.failure if failed else breaker.success)(ticket, t)
    assert breaker.state(3.0) == "open"
    late = CircuitBreaker(BreakerSettings(consecutive_failures=100, window_s=10.0, min_calls=4))
    for t, failed in [(0.0, True), (1.0, True), (20.0, False), (21.0, False), (22.0, True)]:
        ticket = late.allow(t)
        assert ticket is not None
        (late.failure if failed else late.success)(ticket, t)
    assert late.state(22.0) == "closed"


def test_breaker_ignores_stale_outcomes_and_returns_unused_probe_slots() -> None:
    breaker = CircuitBreaker(BreakerSettings(consecutive_failures=1, open_s=1.0))
    early = breaker.allow(0.0)
    opener = breaker.allow(0.0)
    assert early is not None and opener is not None
    breaker.failure(opener, 0.0)
    assert not breaker.valid(early, 0.5)  # a call admitted before opening must not be sent now
    breaker.success(early, 0.5)  # a late success from before the opening changes nothing
    assert breaker.state(0.5) == "open"
    probe = breaker.allow(1.0)
    assert probe is not None
    breaker.cancel(probe, 1.0)  # never sent
    assert breaker.allow(1.0) is not None


def test_backoff_is_full_jitter_capped_and_honours_retry_after() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(3, None, 0.5, 2.0, rng) for _ in range(500)]
    assert min(delays) >= 0.0 and max(delays) <= 2.0  # min(cap, 0.5 * 2**3)
    assert max(delays) - min(delays) > 1.0  # really jittered
    assert all(0.0 <= backoff_delay(40, None, 0.5, 2.0, rng) <= 2.0 for _ in range(50))
    waits = [backoff_delay(0, 5.0, 0.5, 2.0, rng) for _ in range(200)]
    assert all(5.0 <= w <= 5.5 for w in waits)


async def test_concurrency_cap_is_fifo_and_times_out_without_leaking() -> None:
    clock = ScaledClock(1.0)
    cap = ConcurrencyCap(1, clock)
    assert await cap.acquire(0.0)
    assert not await cap.acquire(0.0)
    assert not await cap.acquire(0.05)  # timed out waiting
    order: list[int] = []

    async def waiter(i: int) -> None:
        assert await cap.acquire(5.0)
        order.append(i)
        cap.release()

    tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
    await asyncio.sleep(0.01)
    cancelled = asyncio.create_task(cap.acquire(5.0))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    cap.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert cap.in_use == 0 and cap.waiting == 0


async def test_admission_refuses_fast_when_open_or_when_a_limit_would_overrun_the_wait() -> None:
    clock = ScaledClock(1.0)
    traffic = ProviderTraffic(rpm=60, breaker=CircuitBreaker(BreakerSettings(consecutive_failures=1)),
                              clock=clock)
    first = await traffic.admit(10, max_wait_s=0.1)
    with pytest.raises(ProviderError) as limited:
        await traffic.admit(10, max_wait_s=0.1)  # next RPM slot is a second away
    assert limited.value.kind == "rate_limited"
    assert limited.value.retry_after_s == pytest.approx(1.0, abs=0.05)
    first.done("failure")
    with pytest.raises(ProviderError) as refused:
        await traffic.admit(10, max_wait_s=10.0)
    assert refused.value.kind == "circuit_open"


async def test_paused_provider_waits_out_retry_after() -> None:
    clock = ScaledClock(100.0)
    traffic = ProviderTraffic(clock=clock)
    traffic.pause_for(30.0)  # 0.3 s real
    with pytest.raises(ProviderError):
        await traffic.admit(1, max_wait_s=5.0)
    before = clock.now()
    admission = await traffic.admit(1, max_wait_s=60.0)
    assert clock.now() - before >= 24.0
    admission.done("success", tokens_used=1)
