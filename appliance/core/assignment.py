"""Who gets the next waiting conversation: pure policy, no I/O.

An agent is eligible when online (not away), enabled, and below their capacity. The one with
the most free slots wins; ties go to whoever was assigned longest ago (round robin). Waiting
conversations are served first in, first out.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec


class AgentLoad(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    capacity: int
    load: int
    last_assigned: float = 0.0

    @property
    def free(self) -> int:
        return self.capacity - self.load


def choose_agent(agents: Sequence[AgentLoad]) -> AgentLoad | None:
    eligible = [a for a in agents if a.free > 0]
    if not eligible:
        return None
    return min(eligible, key=lambda a: (-a.free, a.last_assigned, a.name))


def plan(waiting: Sequence[str], agents: Sequence[AgentLoad], now: float) -> list[tuple[str, str]]:
    """Assignments ``(conversation_id, agent)`` for conversations waiting in FIFO order."""
    pool = {a.name: a for a in agents}
    result: list[tuple[str, str]] = []
    for conversation_id in waiting:
        chosen = choose_agent(list(pool.values()))
        if chosen is None:
            break
        result.append((conversation_id, chosen.name))
        pool[chosen.name] = msgspec.structs.replace(chosen, load=chosen.load + 1, last_assigned=now + len(result))
    return result


def expected_wait_s(position: int, agents_online: int, median_handle_s: float) -> int:
    """A rough wait for the ``position``-th waiting visitor: one handle time per agent ahead."""
    if position <= 0:
        return 0
    per_slot = median_handle_s / max(agents_online, 1)
    return round(position * per_slot)
