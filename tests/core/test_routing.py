"""Routing-table operations: what an operator's `appliance model ...` commands do to the table."""

from __future__ import annotations

import msgspec
import pytest

from appliance.core.errors import InputError, NotFound, Unavailable
from appliance.core.routing import (
    ModelSpec,
    RoutingTable,
    add_model,
    attempt_order,
    choose_arm,
    promote,
    remove_model,
    rollback,
    set_canary,
    set_fallback,
    use,
)


def spec(name: str, **kw: object) -> ModelSpec:
    return ModelSpec(name=name, base_url="http://127.0.0.1:9/v1", model=f"{name}-model", **kw)  # type: ignore[arg-type]


@pytest.fixture
def table() -> RoutingTable:
    t = RoutingTable()
    for name in ("a", "b", "c"):
        t = add_model(t, spec(name))
    return use(t, "a")


def test_add_model_validates_with_messages_naming_the_problem() -> None:
    t = RoutingTable()
    with pytest.raises(InputError, match="base-url"):
        add_model(t, ModelSpec(name="x", base_url="ftp://x", model="m"))
    with pytest.raises(InputError, match="invalid model name"):
        add_model(t, spec("bad name"))
    with pytest.raises(InputError, match="max_concurrency"):
        add_model(t, spec("x", max_concurrency=0))
    with pytest.raises(InputError, match="rpm"):
        add_model(t, spec("x", rpm=-1))
    t = add_model(t, spec("x"))
    with pytest.raises(InputError, match="already exists"):
        add_model(t, spec("x"))
    updated = add_model(t, spec("x", rpm=10), replace=True)
    assert updated.models["x"].rpm == 10 and t.models["x"].rpm == 0  # the old table is untouched
    assert add_model(t, ModelSpec(name="builtin", kind="local")).models["builtin"].kind == "local"


def test_use_switches_and_remembers_the_previous_model(table: RoutingTable) -> None:
    switched = use(table, "b")
    assert (switched.active, switched.previous_active) == ("b", "a")
    assert choose_arm(switched, "conv-1") == ("b", "active")
    with pytest.raises(NotFound, match="no model named 'zzz'"):
        use(table, "zzz")
    assert rollback(switched).active == "a"


def test_remove_refuses_the_model_in_use_and_cleans_references(table: RoutingTable) -> None:
    with pytest.raises(InputError, match="is active"):
        remove_model(table, "a")
    t = set_canary(table, "b", 10)
    with pytest.raises(InputError, match="canary"):
        remove_model(t, "b")
    t = set_fallback(use(table, "c"), ["b", "a"])
    t = use(t, "a")  # previous_active is now c
    t = remove_model(t, "c")
    assert "c" not in t.models and t.previous_active is None
    assert remove_model(t, "b").fallback == ["a"]
    with pytest.raises(NotFound):
        remove_model(t, "c")


def test_canary_promote_and_rollback_semantics(table: RoutingTable) -> None:
    with pytest.raises(InputError, match="between 0 and 100"):
        set_canary(table, "b", 120)
    with pytest.raises(InputError, match="already the active"):
        set_canary(table, "a", 10)
    with pytest.raises(InputError, match="no canary"):
        promote(table)
    with pytest.raises(InputError, match="no active model"):
        set_canary(add_model(RoutingTable(), spec("x")), "x", 5)

    canary = set_canary(table, "b", 20)
    aborted = rollback(canary)  # rollback during a canary ends the canary, keeps the active
    assert (aborted.active, aborted.canary, aborted.canary_percent) == ("a", None, 0.0)

    promoted = promote(canary)
    assert (promoted.active, promoted.previous_active, promoted.canary) == ("b", "a", None)
    assert all(choose_arm(promoted, f"c{i}") == ("b", "active") for i in range(100))
    back = rollback(promoted)
    assert (back.active, back.previous_active) == ("a", "b")
    assert rollback(back).active == "b"  # rollback of a rollback goes forward again
    with pytest.raises(InputError, match="nothing to roll back"):
        rollback(RoutingTable(models=table.models, active="a"))
    assert set_canary(canary, None).canary is None


def test_canary_share_is_within_three_points_over_2000_conversations_and_sticky(table: RoutingTable) -> None:
    t = set_canary(table, "b", 20)
    ids = [f"conv-{i:05d}" for i in range(2000)]
    arms = {cid: choose_arm(t, cid) for cid in ids}
    share = 100 * sum(arm == ("b", "canary") for arm in arms.values()) / len(ids)
    assert 17.0 <= share <= 23.0
    assert all(choose_arm(t, cid) == arms[cid] for cid in ids)  # sticky
    wider = set_canary(t, "b", 50)
    assert all(choose_arm(wider, cid)[1] == "canary" for cid, arm in arms.items() if arm[1] == "canary")
    assert all(choose_arm(set_canary(t, "b", 0), cid)[1] == "active" for cid in ids[:200])
    assert all(choose_arm(set_canary(t, "b", 100), cid)[1] == "canary" for cid in ids[:200])


def test_attempt_order_is_arm_then_fallbacks_without_repeats(table: RoutingTable) -> None:
    t = set_fallback(table, ["a", "c", "c", "b"])
    assert t.fallback == ["a", "c", "b"]
    assert attempt_order(t, "x") == ["a", "c", "b"]
    t = set_canary(t, "b", 100)
    assert attempt_order(t, "x") == ["b", "a", "c"]
    with pytest.raises(NotFound):
        set_fallback(table, ["a", "nope"])
    no_active = RoutingTable(models=table.models, fallback=["c"])
    assert attempt_order(no_active, "x") == ["c"]
    with pytest.raises(Unavailable, match="model use"):
        choose_arm(no_active, "x")


def test_table_round_trips_as_json_for_storage(table: RoutingTable) -> None:
    t = set_fallback(set_canary(table, "b", 12.5), ["c"])
    decoded = msgspec.json.decode(msgspec.json.encode(t), type=RoutingTable)
    assert decoded == t
