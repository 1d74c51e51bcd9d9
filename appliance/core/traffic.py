"""Traffic control for one upstream provider: rate buckets, a concurrency cap, a circuit breaker.

Pure asyncio + stdlib. The state machines take the time as an explicit ``now`` (seconds on a
monotonic clock), so they are tested without sleeping; the async parts get ``now`` and ``sleep``
from an injectable :class:`Clock`.

Admission order for one upstream call (:meth:`ProviderTraffic.admit`): breaker ticket, then a
concurrency slot, then the Retry-After pause and the RPM/TPM reservations, then a final breaker
check. The request must be sent right after admission: the RPM guarantee is about send times.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

from appliance.core.errors import ProviderError

BreakerState = Literal["closed", "open", "half_open"]
Outcome = Literal["success", "failure", "neutral", "cancelled"]


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScaledClock:
    """Time running ``factor`` times faster than the monotonic clock (tests and simulations:
    with factor 30 a 60 s rate window passes in 2 real seconds)."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def now(self) -> float:
        return time.monotonic() * self.factor

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds / self.factor)


class TokenBucket:
    """``capacity`` tokens per ``window_s``, refilled continuously, holding at most ``burst``.

    Invariant: over any interval of length T at most ``burst + capacity * T / window_s`` tokens
    are granted. Grants include reservations that put the bucket into debt; their holders wait
    (the returned delay) until refill has repaid the debt. With ``burst=1`` and unit costs this is
    the RPM guarantee: never more than ``capacity + 1`` requests in any window. A cost above
    ``burst`` is charged as ``burst`` so that one oversized request can still go, alone.
    Refunds (:meth:`give_back`) are only sound for costs whose send time has not yet come.
    """

    def __init__(self, capacity: float, window_s: float = 60.0, burst: float | None = None) -> None:
        if capacity <= 0 or window_s <= 0:
            raise ValueError("capacity and window_s must be positive")
        self.capacity = float(capacity)
        self.window_s = float(window_s)
        self.burst = float(capacity if burst is None else burst)
        if self.burst <= 0:
            raise ValueError("burst must be positive")
        self.rate = self.capacity / self.window_s
        self._level = self.burst
        self._last: float | None = None

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._level = min(self.burst, self._level + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now

    def level(self, now: float) -> float:
        self._refill(now)
        return self._level

    def wait_time(self, n: float, now: float) -> float:
        """Seconds until ``n`` tokens are available (0.0 when they are now)."""
        self._refill(now)
        need = min(n, self.burst) - self._level
        return max(0.0, need / self.rate)

    def try_acquire(self, n: float, now: float) -> bool:
        if self.wait_time(n, now) > 0.0:
            return False
        self._level -= min(n, self.burst)
        return True

    def reserve(self, n: float, now: float) -> float:
        """Take ``n`` tokens now, into debt if needed; the caller proceeds after the returned delay."""
        wait = self.wait_time(n, now)
        self._level -= min(n, self.burst)
        return wait

    def give_back(self, n: float, now: float) -> None:
        self._refill(now)
        self._level = min(self.burst, self._level + n)

    def take(self, n: float, now: float) -> None:
        """Charge ``n`` more tokens (may go into debt): settling a usage above its estimate."""
        self._refill(now)
        self._level -= n


class ConcurrencyCap:
    """At most ``limit`` holders at once; waiters are served first come, first served."""

    def __init__(self, limit: int, clock: Clock) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.in_use = 0
        self._clock = clock
        self._waiters: deque[asyncio.Future[bool]] = deque()

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    async def acquire(self, max_wait_s: float) -> bool:
        """True once a slot is held; False if none freed up within ``max_wait_s``."""
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
            return True
        if max_wait_s <= 0:
            return False
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        timer = None if math.isinf(max_wait_s) else asyncio.ensure_future(self._expire(fut, max_wait_s))
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.result():
                self.release()
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if fut in self._waiters:
                self._waiters.remove(fut)

    async def _expire(self, fut: asyncio.Future[bool], after_s: float) -> None:
        await self._clock.sleep(after_s)
        if not fut.done():
            fut.set_result(False)
            self._waiters.remove(fut)

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # the slot passes straight to the waiter
                return
        self.in_use -= 1


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    consecutive_failures: int = 5
    failure_ratio: float = 0.5
    window_s: float = 30.0
    min_calls: int = 10
    open_s: float = 15.0
    half_open_probes: int = 1


@dataclass(frozen=True, slots=True)
class BreakerTicket:
    probe: bool
    generation: int


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    state: BreakerState
    consecutive_failures: int
    window_calls: int
    window_failures: int
    opened_total: int
    probes_total: int
    rejected_total: int
    reopens_in_s: float


class CircuitBreaker:
    """closed → open on N consecutive failures, or a failure ratio over a sliding window once it
    holds ``min_calls`` outcomes; open for ``open_s``; then half-open, admitting at most
    ``half_open_probes`` probes at a time. A probe's success closes it, its failure re-opens it.

    Every call needs a ticket from :meth:`allow` and must end in exactly one of
    :meth:`success`, :meth:`failure` or :meth:`cancel`. Each transition to open or closed starts a
    new generation; an outcome whose ticket is from an older generation is ignored, and
    :meth:`valid` lets a caller that waited after :meth:`allow` check before it sends.
    """

    def __init__(self, settings: BreakerSettings | None = None) -> None:
        self.settings = settings or BreakerSettings()
        self._state: BreakerState = "closed"
        self._generation = 0
        self._opened_at = 0.0
        self._consecutive = 0
        self._window: deque[tuple[float, bool]] = deque()
        self._window_failures = 0
        self._probes_in_flight = 0
        self.opened_total = 0
        self.probes_total = 0
        self.rejected_total = 0

    def state(self, now: float) -> BreakerState:
        if self._state == "open" and now - self._opened_at >= self.settings.open_s:
            self._state = "half_open"
            self._probes_in_flight = 0
        return self._state

    def reopens_in(self, now: float) -> float:
        if self.state(now) != "open":
            return 0.0
        return max(0.0, self._opened_at + self.settings.open_s - now)

    def allow(self, now: float) -> BreakerTicket | None:
        state = self.state(now)
        if state == "closed":
            return BreakerTicket(probe=False, generation=self._generation)
        if state == "half_open" and self._probes_in_flight < self.settings.half_open_probes:
            self._probes_in_flight += 1
            self.probes_total += 1
            return BreakerTicket(probe=True, generation=self._generation)
        self.rejected_total += 1
        return None

    def valid(self, ticket: BreakerTicket, now: float) -> bool:
        """Whether a call with this ticket may still be sent (and its outcome still counts)."""
        state = self.state(now)
        return ticket.generation == self._generation and state == ("half_open" if ticket.probe else "closed")

    def success(self, ticket: BreakerTicket, now: float) -> None:
        if not self.valid(ticket, now):
            return
        if ticket.probe:
            self._close()
            return
        self._consecutive = 0
        self._record(now, failed=False)

    def failure(self, ticket: BreakerTicket, now: float) -> None:
        if not self.valid(ticket, now):
            return
        if ticket.probe:
            self._open(now)
            return
        self._consecutive += 1
        self._record(now, failed=True)
        s = self.settings
        calls = len(self._window)
        if self._consecutive >= s.consecutive_failures or (
            calls >= s.min_calls and self._window_failures / calls >= s.failure_ratio
        ):
            self._open(now)

    def cancel(self, ticket: BreakerTicket, now: float) -> None:
        """The admitted call was never sent: give its probe slot back."""
        if ticket.probe and self.valid(ticket, now):
            self._probes_in_flight -= 1

    def snapshot(self, now: float) -> BreakerSnapshot:
        self._trim(now)
        return BreakerSnapshot(
            state=self.state(now), consecutive_failures=self._consecutive,
            window_calls=len(self._window), window_failures=self._window_failures,
            opened_total=self.opened_total, probes_total=self.probes_total,
            rejected_total=self.rejected_total, reopens_in_s=self.reopens_in(now),
        )

    def _record(self, now: float, *, failed: bool) -> None:
        self._window.append((now, failed))
        self._window_failures += failed
        self._trim(now)

    def _trim(self, now: float) -> None:
        horizon = now - self.settings.window_s
        while self._window and self._window[0][0] < horizon:
            _, failed = self._window.popleft()
            self._window_failures -= failed

    def _open(self, now: float) -> None:
        self._state = "open"
        self._generation += 1
        self._opened_at = now
        self._probes_in_flight = 0
        self.opened_total += 1

    def _close(self) -> None:
        self._state = "closed"
        self._generation += 1
        self._consecutive = 0
        self._window.clear()
        self._window_failures = 0
        self._probes_in_flight = 0


def backoff_delay(
    attempt: int, retry_after_s: float | None, base: float, cap: float, rng: random.Random,
) -> float:
    """Full-jitter exponential backoff for retry number ``attempt`` (0 = first retry).

    A server's Retry-After is honoured: the delay is never shorter than it, and a little jitter on
    top keeps many clients from coming back at the same instant.
    """
    ceiling = min(cap, base * math.pow(2.0, min(attempt, 62)))
    if retry_after_s is not None and retry_after_s > 0:
        return retry_after_s + rng.uniform(0.0, min(base, ceiling))
    return rng.uniform(0.0, ceiling)


class Admission:
    """One admitted upstream call; end it with exactly one :meth:`done`."""

    def __init__(
        self, traffic: ProviderTraffic, ticket: BreakerTicket, tokens_reserved: int, *, slot: bool,
    ) -> None:
        self._traffic = traffic
        self.ticket = ticket
        self.tokens_reserved = tokens_reserved
        self._slot = slot
        self._done = False

    def done(self, outcome: Outcome, tokens_used: int | None = None) -> None:
        """Report the outcome to the breaker, free the slot, settle TPM (``None``: keep the estimate)."""
        if self._done:
            return
        self._done = True
        t = self._traffic
        now = t.clock.now()
        if outcome == "success":
            t.breaker.success(self.ticket, now)
        elif outcome == "failure":
            t.breaker.failure(self.ticket, now)
        elif outcome == "neutral":
            if self.ticket.probe:  # the provider answered, so it is up
                t.breaker.success(self.ticket, now)
        else:
            t.breaker.cancel(self.ticket, now)
        if self._slot and t.cap is not None:
            t.cap.release()
        if t.tpm is not None and tokens_used is not None:
            diff = tokens_used - self.tokens_reserved
            if diff > 0:
                t.tpm.take(diff, now)
            elif diff < 0:
                t.tpm.give_back(-diff, now)


class ProviderTraffic:
    """Admission control for one provider: breaker, concurrency cap, RPM/TPM, Retry-After pause.

    ``rpm`` uses a paced bucket (burst 1): never more than ``rpm + 1`` sends in any 60 s window.
    ``tpm`` reserves the estimated tokens up front (burst: the whole minute) and is settled with
    the actual usage in :meth:`Admission.done`. A limit of 0 means unlimited. While the breaker is
    open nothing is admitted except half-open probes.
    """

    def __init__(
        self, *, rpm: int = 0, tpm: int = 0, max_concurrency: int = 0,
        breaker: CircuitBreaker | None = None, clock: Clock | None = None, window_s: float = 60.0,
    ) -> None:
        self.clock: Clock = clock or MonotonicClock()
        self.breaker = breaker or CircuitBreaker()
        self.rpm = TokenBucket(rpm, window_s, burst=1) if rpm > 0 else None
        self.tpm = TokenBucket(tpm, window_s) if tpm > 0 else None
        self.cap = ConcurrencyCap(max_concurrency, self.clock) if max_concurrency > 0 else None
        self._paused_until = 0.0

    @property
    def in_flight(self) -> int:
        return self.cap.in_use if self.cap is not None else 0

    def pause_for(self, seconds: float) -> None:
        """Send nothing before ``seconds`` from now (a Retry-After from the provider)."""
        self._paused_until = max(self._paused_until, self.clock.now() + seconds)

    async def admit(self, tokens_estimate: int, max_wait_s: float) -> Admission:
        """Wait (at most ``max_wait_s``) until the call may be sent.

        Raises ProviderError ``circuit_open`` when the breaker refuses, or ``rate_limited``
        (``retry_after_s`` set) when a limit would need a longer wait: nothing was sent.
        """
        clock, breaker = self.clock, self.breaker
        start = clock.now()
        ticket = breaker.allow(start)
        if ticket is None:
            raise ProviderError(
                "circuit_open", "circuit breaker open", retry_after_s=breaker.reopens_in(start),
            )
        slot = False
        tokens = 0
        try:
            if self.cap is not None:
                if not await self.cap.acquire(max_wait_s):
                    raise ProviderError("rate_limited", f"all {self.cap.limit} concurrent slots busy")
                slot = True
            now = clock.now()
            left = max_wait_s - (now - start)
            wait = max(
                self._paused_until - now,
                self.rpm.wait_time(1, now) if self.rpm is not None else 0.0,
                self.tpm.wait_time(tokens_estimate, now) if self.tpm is not None else 0.0,
            )
            if wait > left:
                raise ProviderError(
                    "rate_limited", f"local rate limit: next slot in {wait:.2f}s", retry_after_s=wait,
                )
            if self.rpm is not None:
                self.rpm.reserve(1, now)
            if self.tpm is not None:
                self.tpm.reserve(tokens_estimate, now)
                tokens = tokens_estimate
            if wait > 0:
                await clock.sleep(wait)
            if not breaker.valid(ticket, clock.now()):
                raise ProviderError("circuit_open", "circuit breaker opened while waiting")
        except BaseException:
            Admission(self, ticket, tokens, slot=slot).done("cancelled", tokens_used=0)
            raise
        return Admission(self, ticket, tokens, slot=slot)
