"""Each model arm over time, from the turns' decision traces: what a canary is judged on.

The router's live counters (``ModelRouter.snapshot``) are cumulative since the server started
and lost on restart; this history is derived from stored traces instead, so it survives
restarts, covers replicated turns, and can look at any window.

Per turn and model (counted the way ``ArmMetrics`` counts): the model had a request when it is
in the turn's attempts (skips by an open breaker or a limit included); an error when it did not
answer; its latency is the sum of its calls (retries included) on an answered turn. A
thumbs-down counts for the model and arm that answered (the trace's route and arm), at the time
of the turn.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from appliance.core.errors import InputError
from appliance.core.types import Attempt

BUCKETS_MS = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
MAX_BUCKETS = 2_000


class TurnSample(msgspec.Struct, kw_only=True):
    """What one stored trace tells about the models: when, every attempt, who answered, rating."""

    at_ms: int
    attempts: list[Attempt]
    route: str = ""
    arm: str = ""
    rating: str | None = None


class ArmPoint(msgspec.Struct, kw_only=True):
    at_ms: int
    requests: int = 0
    errors: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    rated: int = 0
    thumbs_down: int = 0


class ArmTotals(msgspec.Struct, kw_only=True):
    requests: int = 0
    errors: int = 0
    error_rate: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    rated: int = 0
    thumbs_down: int = 0
    thumbs_down_rate: float = 0.0


class ArmSeries(msgspec.Struct, kw_only=True):
    model: str
    arm: str
    totals: ArmTotals
    points: list[ArmPoint]


class ModelSeries(msgspec.Struct, kw_only=True):
    since_ms: int
    until_ms: int
    bucket: str
    bucket_ms: int
    turns: int
    arms: list[ArmSeries]


def bucket_ms(bucket: str, since_ms: int, until_ms: int) -> int:
    """The bucket's width, after checking that the window is sound and not too finely cut."""
    if bucket not in BUCKETS_MS:
        raise InputError(f"bucket must be one of {', '.join(BUCKETS_MS)} (got {bucket!r})")
    if until_ms <= since_ms:
        raise InputError("'since' must be before 'until'")
    width = BUCKETS_MS[bucket]
    if (until_ms - since_ms) // width > MAX_BUCKETS:
        raise InputError(f"at most {MAX_BUCKETS} buckets: choose a shorter window or a wider bucket")
    return width


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 2)


class _Acc:
    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latencies: list[float] = []
        self.rated = 0
        self.down = 0

    def add(self, other: _Acc) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.latencies += other.latencies
        self.rated += other.rated
        self.down += other.down


def series(turns: Iterable[TurnSample], since_ms: int, until_ms: int, bucket: str) -> ModelSeries:
    """Requests, errors, p50/p99 latency and thumbs-down per (model, arm) and bucket; a bucket
    appears in an arm's points only when the arm had a request or a rating in it."""
    width = bucket_ms(bucket, since_ms, until_ms)
    cells: dict[tuple[str, str], dict[int, _Acc]] = {}
    count = 0
    for turn in turns:
        count += 1
        start = turn.at_ms // width * width
        per_model: dict[str, tuple[str, list[Attempt]]] = {}
        for attempt in turn.attempts:
            per_model.setdefault(attempt.provider, (attempt.arm, []))[1].append(attempt)
        for model, (arm, attempts) in per_model.items():
            acc = cells.setdefault((model, arm), {}).setdefault(start, _Acc())
            acc.requests += 1
            if attempts[-1].status == "ok":
                acc.latencies.append(sum(a.latency_ms for a in attempts))
            else:
                acc.errors += 1
        if turn.rating is not None and turn.route:
            acc = cells.setdefault((turn.route, turn.arm), {}).setdefault(start, _Acc())
            acc.rated += 1
            acc.down += turn.rating == "down"
    arms = []
    for (model, arm), buckets in sorted(cells.items()):
        total = _Acc()
        points = []
        for start, acc in sorted(buckets.items()):
            total.add(acc)
            points.append(ArmPoint(
                at_ms=start, requests=acc.requests, errors=acc.errors, latency_p50_ms=_percentile(acc.latencies, 0.5),
                latency_p99_ms=_percentile(acc.latencies, 0.99), rated=acc.rated, thumbs_down=acc.down))
        totals = ArmTotals(
            requests=total.requests, errors=total.errors,
            error_rate=round(total.errors / total.requests, 4) if total.requests else 0.0,
            latency_p50_ms=_percentile(total.latencies, 0.5), latency_p99_ms=_percentile(total.latencies, 0.99),
            rated=total.rated, thumbs_down=total.down,
            thumbs_down_rate=round(total.down / total.rated, 4) if total.rated else 0.0)
        arms.append(ArmSeries(model=model, arm=arm, totals=totals, points=points))
    return ModelSeries(since_ms=since_ms, until_ms=until_ms, bucket=bucket, bucket_ms=width, turns=count, arms=arms)
