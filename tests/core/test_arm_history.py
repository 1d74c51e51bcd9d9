"""Per-arm series from turn samples: what the models page charts to judge a canary."""

from __future__ import annotations

from typing import Literal

import pytest

from appliance.core.arm_history import MAX_BUCKETS, TurnSample, bucket_ms, series
from appliance.core.errors import InputError
from appliance.core.types import Attempt

MIN = 60_000
T0 = 1_700_000_040_000  # a minute boundary


def ok(model: str, arm: str, ms: float) -> Attempt:
    return Attempt(provider=model, arm=arm, status="ok", latency_ms=ms)


def failed(model: str, arm: str, ms: float = 5.0, status: Literal["error", "skipped"] = "error") -> Attempt:
    return Attempt(provider=model, arm=arm, status=status, error_kind="server_error", latency_ms=ms)


def answered(at_ms: int, model: str, arm: str, ms: float, rating: str | None = None) -> TurnSample:
    return TurnSample(at_ms=at_ms, attempts=[ok(model, arm, ms)], route=model, arm=arm, rating=rating)


def test_each_arm_has_its_points_per_bucket_and_totals() -> None:
    turns = [
        answered(T0 + 1_000, "up1", "active", 100),
        answered(T0 + 2_000, "up1", "active", 300, rating="up"),
        answered(T0 + 3_000, "up2", "canary", 50, rating="down"),
        answered(T0 + MIN + 5, "up1", "active", 200, rating="down"),
        answered(T0 + 3 * MIN, "up2", "canary", 70),
    ]
    out = series(turns, T0, T0 + 5 * MIN, "minute")
    assert (out.turns, out.bucket_ms) == (5, MIN)
    by_arm = {(a.model, a.arm): a for a in out.arms}
    assert list(by_arm) == [("up1", "active"), ("up2", "canary")]

    active = by_arm[("up1", "active")]
    assert [(p.at_ms, p.requests, p.latency_p50_ms, p.latency_p99_ms) for p in active.points] == [
        (T0, 2, 100, 300), (T0 + MIN, 1, 200, 200)]
    totals = active.totals
    assert (totals.requests, totals.errors, totals.rated, totals.thumbs_down) == (3, 0, 2, 1)
    assert active.totals.thumbs_down_rate == 0.5
    assert active.totals.latency_p50_ms == 200

    canary = by_arm[("up2", "canary")]
    assert [p.at_ms for p in canary.points] == [T0, T0 + 3 * MIN]  # buckets without traffic are left out
    assert canary.points[0].thumbs_down == 1
    assert canary.totals.thumbs_down_rate == 1.0


def test_a_failed_model_counts_an_error_and_the_fallback_that_answered_a_request() -> None:
    turn = TurnSample(at_ms=T0, attempts=[failed("up2", "canary", 40), failed("up2", "canary", 60),
                                          ok("up1", "fallback", 120)], route="up1", arm="fallback", rating="down")
    skipped = TurnSample(at_ms=T0 + 10, attempts=[failed("up2", "canary", 0, status="skipped"),
                                                  ok("up1", "fallback", 80)], route="up1", arm="fallback")
    out = series([turn, skipped], T0, T0 + MIN, "minute")
    by_arm = {(a.model, a.arm): a for a in out.arms}
    canary = by_arm[("up2", "canary")].totals
    assert (canary.requests, canary.errors, canary.error_rate, canary.latency_p50_ms) == (2, 2, 1.0, 0.0)
    assert canary.rated == 0  # the thumbs-down goes to the model that answered
    fallback = by_arm[("up1", "fallback")].totals
    assert (fallback.requests, fallback.errors, fallback.rated, fallback.thumbs_down) == (2, 0, 1, 1)


def test_retries_add_to_the_latency_of_the_turn_they_answered() -> None:
    turn = TurnSample(at_ms=T0, attempts=[failed("up1", "active", 30), ok("up1", "active", 70)], route="up1",
                      arm="active")
    point = series([turn], T0, T0 + MIN, "minute").arms[0].points[0]
    assert (point.requests, point.errors, point.latency_p50_ms) == (1, 0, 100)


def test_percentiles_over_many_turns() -> None:
    turns = [answered(T0 + i, "up1", "active", float(i + 1)) for i in range(100)]
    totals = series(turns, T0, T0 + MIN, "minute").arms[0].totals
    assert (totals.latency_p50_ms, totals.latency_p99_ms) == (51.0, 99.0)


def test_hour_and_day_buckets_start_on_their_boundaries() -> None:
    day = 86_400_000
    start = T0 // day * day
    turns = [answered(start + 5, "up1", "active", 10), answered(start + 3_600_000 * 2 + 7, "up1", "active", 10),
             answered(start + day + 1, "up1", "active", 10)]
    hours = series(turns, start, start + 2 * day, "hour").arms[0].points
    assert [p.at_ms - start for p in hours] == [0, 7_200_000, day]
    days = series(turns, start, start + 2 * day, "day").arms[0].points
    assert [(p.at_ms - start, p.requests) for p in days] == [(0, 2), (day, 1)]


def test_no_turns_no_arms() -> None:
    out = series([], T0, T0 + MIN, "minute")
    assert (out.turns, out.arms) == (0, [])


@pytest.mark.parametrize(("bucket", "since", "until", "message"), [
    ("week", T0, T0 + MIN, "bucket must be one of minute, hour, day"),
    ("minute", T0, T0, "'since' must be before 'until'"),
    ("minute", T0, T0 + (MAX_BUCKETS + 1) * MIN, f"at most {MAX_BUCKETS} buckets"),
])
def test_a_bad_window_is_an_input_error(bucket: str, since: int, until: int, message: str) -> None:
    with pytest.raises(InputError, match=message):
        bucket_ms(bucket, since, until)
    assert bucket_ms("hour", T0, T0 + MAX_BUCKETS * 3_600_000) == 3_600_000
