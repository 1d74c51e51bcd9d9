"""Who gets the next waiting conversation (``core/assignment.py``): most free capacity first,
ties to whoever was assigned longest ago, nobody eligible means nobody, the queue is FIFO."""

from __future__ import annotations

from appliance.core.assignment import AgentLoad, choose_agent, expected_wait_s, plan


def agent(name: str, capacity: int, load: int = 0, last: float = 0.0) -> AgentLoad:
    return AgentLoad(name=name, capacity=capacity, load=load, last_assigned=last)


def test_the_agent_with_the_most_free_capacity_is_chosen() -> None:
    busy = agent("busy", capacity=5, load=4)  # 1 free, though the largest capacity
    idle = agent("idle", capacity=3, load=1)  # 2 free
    assert choose_agent([busy, idle]) == idle
    assert choose_agent([idle, busy]) == idle
    assert choose_agent([agent("a", 2, 1), agent("b", 4, 0), agent("c", 3, 0)]).name == "b"


def test_ties_go_to_whoever_was_assigned_longest_ago() -> None:
    recent = agent("recent", capacity=2, load=0, last=200.0)
    earlier = agent("earlier", capacity=2, load=0, last=100.0)
    never = agent("never", capacity=3, load=1, last=0.0)  # same 2 free; never assigned at all
    assert choose_agent([recent, earlier]) == earlier
    assert choose_agent([recent, earlier, never]) == never


def test_nobody_eligible_is_none() -> None:
    assert choose_agent([]) is None
    assert choose_agent([agent("full", 2, 2), agent("zero", 0, 0)]) is None
    # Capacity lowered below the current load: over capacity is not eligible either.
    assert choose_agent([agent("over", capacity=1, load=3)]) is None
    assert choose_agent([agent("over", 1, 3), agent("free", 1, 0)]).name == "free"


def test_plan_serves_the_queue_first_in_first_out_and_round_robin() -> None:
    agents = [agent("ann", capacity=2), agent("ben", capacity=1), agent("cy", capacity=1)]
    result = plan(["c1", "c2", "c3", "c4", "c5", "c6"], agents, now=1000.0)
    # c1 to the most free (ann: 2); then all have 1 free and ann was just assigned: ben, cy, ann.
    assert result == [("c1", "ann"), ("c2", "ben"), ("c3", "cy"), ("c4", "ann")]
    # Capacity ran out: c5 and c6 wait, in order (they are not skipped for later ones).
    assert [cid for cid, _ in result] == ["c1", "c2", "c3", "c4"]


def test_plan_respects_existing_load_and_earlier_assignments() -> None:
    agents = [agent("ann", capacity=3, load=2, last=50.0), agent("ben", capacity=3, load=2, last=10.0)]
    assert plan(["x", "y", "z"], agents, now=100.0) == [("x", "ben"), ("y", "ann")]
    assert plan(["x"], [agent("full", 1, 1)], now=1.0) == []
    assert plan([], agents, now=1.0) == []
    assert plan(["x", "y"], [], now=1.0) == []


def test_plan_gives_each_agent_no_more_than_their_free_slots() -> None:
    agents = [agent(f"a{i}", capacity=i % 3, load=0, last=float(i)) for i in range(9)]
    waiting = [f"c{i}" for i in range(50)]
    result = plan(waiting, agents, now=10.0)
    given: dict[str, int] = {}
    for _, name in result:
        given[name] = given.get(name, 0) + 1
    assert given == {a.name: a.capacity for a in agents if a.capacity}
    assert [cid for cid, _ in result] == waiting[: len(result)]


def test_expected_wait() -> None:
    assert expected_wait_s(0, agents_online=2, median_handle_s=300) == 0
    assert expected_wait_s(1, agents_online=1, median_handle_s=300) == 300
    assert expected_wait_s(3, agents_online=2, median_handle_s=300) == 450
    assert expected_wait_s(2, agents_online=0, median_handle_s=120) == 240  # nobody online: as if one
