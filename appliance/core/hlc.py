"""Hybrid logical clock: 48 bits of wall-clock milliseconds, 16 bits of logical counter.

Timestamps from one clock are strictly increasing, and after ``observe(remote)`` every local
timestamp is greater than the remote one, so ``(hlc, node)`` orders last-writer-wins updates
consistently on every node.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_COUNTER_BITS = 16
_COUNTER_MASK = (1 << _COUNTER_BITS) - 1


def physical_ms(hlc: int) -> int:
    return hlc >> _COUNTER_BITS


class HybridClock:
    def __init__(self, now_ms: Callable[[], int] | None = None, last: int = 0) -> None:
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._last = last

    def now(self) -> int:
        wall = self._now_ms() << _COUNTER_BITS
        self._last = wall if wall > self._last else self._last + 1
        return self._last

    def observe(self, remote: int) -> None:
        if remote > self._last:
            self._last = remote
