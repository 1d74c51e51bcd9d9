"""The turns' model attempts read back from stored traces over a window, with each reply's rating
(the input of the models page's per-arm series). Real SQLite file."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.core import events as ev
from appliance.core.types import Attempt, Trace
from appliance.store import Store
from appliance.store.model_history import turn_samples


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "node.db", "node-a")
    yield opened
    opened.close()


def turn(store: Store, n: int, attempts: list[Attempt], rating: str | None = None) -> None:
    cid, mid = f"c{n}", f"m{n}"
    route = next((a.provider for a in attempts if a.status == "ok"), "")
    arm = next((a.arm for a in attempts if a.status == "ok"), "")
    events: list[ev.EventPayload] = [ev.TraceRecorded(trace=Trace(
        trace_id=f"t{n}", conversation_id=cid, message_id=mid, route=route, arm=arm, attempts=attempts))]
    if rating:
        events.append(ev.FeedbackGiven(message_id=mid, conversation_id=cid, rating=rating))  # type: ignore[arg-type]
    store.write_sync(lambda txn: [txn.append(e) for e in events])


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_the_window_holds_the_turns_that_called_a_model_with_their_rating(store: Store) -> None:
    start = now_ms()
    turn(store, 1, [Attempt(provider="up1", arm="active", latency_ms=12)], rating="down")
    turn(store, 2, [])  # answered without a model (an intent, a rule): not a model turn
    turn(store, 3, [Attempt(provider="up2", arm="canary", status="error", error_kind="timeout"),
                    Attempt(provider="up1", arm="fallback", latency_ms=30)], rating="up")
    turn(store, 4, [Attempt(provider="up2", arm="canary", latency_ms=8)])
    end = now_ms() + 1

    samples = store.read_sync(lambda c: list(turn_samples(c, start, end)))
    assert [(s.route, s.arm, s.rating, [a.provider for a in s.attempts]) for s in samples] == [
        ("up1", "active", "down", ["up1"]), ("up1", "fallback", "up", ["up2", "up1"]), ("up2", "canary", None, ["up2"])]
    assert all(start <= s.at_ms < end for s in samples)
    assert samples[1].attempts[0].error_kind == "timeout"

    later = now_ms() + 60_000
    assert store.read_sync(lambda c: list(turn_samples(c, later, later + 1000))) == []
