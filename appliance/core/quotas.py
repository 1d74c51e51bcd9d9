"""Rate limits on what visitors may do: per visitor, per IP address and per conversation.

Each limit is a token bucket per key (``capacity`` per ``window_s``, holding at most
``capacity``). A request names every key it is charged to; it goes only if every bucket has a
token, and then takes one from each, so a refused request costs nothing. Memory is bounded:
each limit keeps at most ``max_keys`` buckets and forgets the least recently used one beyond
that (a key that comes back starts with a full bucket, which errs on the visitor's side).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import msgspec

from appliance.core.config import LimitsConfig
from appliance.core.errors import RateLimited
from appliance.core.traffic import TokenBucket


@dataclass(frozen=True)
class Limit:
    """``capacity`` requests per ``window_s`` seconds; a capacity of 0 means no limit."""

    name: str
    capacity: int
    window_s: float

    def describe(self) -> str:
        unit = "minute" if self.window_s == 60 else "hour" if self.window_s == 3600 else f"{self.window_s:g} s"
        return f"{self.capacity} per {unit}"


class KeyedLimit:
    def __init__(self, limit: Limit, max_keys: int) -> None:
        self.limit = limit
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._max_keys = max_keys

    def bucket(self, key: str) -> TokenBucket:
        found = self._buckets.get(key)
        if found is None:
            found = TokenBucket(self.limit.capacity, self.limit.window_s)
            self._buckets[key] = found
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return found

    def __len__(self) -> int:
        return len(self._buckets)


class Quotas:
    """Named limits, checked together: ``admit(now, ("chat_per_ip", ip), ("chat_per_visitor", v))``."""

    def __init__(self, limits: list[Limit], max_keys: int = 100_000) -> None:
        self._limits = {limit.name: KeyedLimit(limit, max_keys) for limit in limits if limit.capacity > 0}
        self.refused: dict[str, int] = {limit.name: 0 for limit in limits}

    def admit(self, now: float, *charges: tuple[str, str]) -> None:
        """Take one token from every named bucket, or none and raise RateLimited naming the limit."""
        buckets = []
        for name, key in charges:
            keyed = self._limits.get(name)
            if keyed is None or not key:
                continue
            bucket = keyed.bucket(key)
            wait = bucket.wait_time(1, now)
            if wait > 0:
                self.refused[name] = self.refused.get(name, 0) + 1
                raise RateLimited(f"too many requests ({name.replace('_', ' ')}: {keyed.limit.describe()});"
                                  f" try again in {max(1, round(wait))} s", wait)
            buckets.append(bucket)
        for bucket in buckets:
            bucket.take(1, now)

    def tracked_keys(self) -> int:
        return sum(len(keyed) for keyed in self._limits.values())


def limits_of(config: LimitsConfig) -> list[Limit]:
    """The limits of the config: field ``chat_per_ip_per_minute`` is limit ``chat_per_ip``."""
    windows = {"minute": 60.0, "hour": 3600.0}
    found = []
    for field in msgspec.structs.fields(config):
        name, _, unit = field.name.rpartition("_per_")
        found.append(Limit(name, int(getattr(config, field.name)), windows[unit]))
    return found


class FrameBudget:
    """One WebSocket's frames per minute (0: unlimited). A client that keeps sending after
    ``patience`` refusals in a row is ``abusive``: the caller closes the socket."""

    def __init__(self, per_minute: int, patience: int = 20) -> None:
        self._bucket = TokenBucket(per_minute, 60.0) if per_minute > 0 else None
        self._per_minute = per_minute
        self._patience = patience
        self._refused_in_a_row = 0

    def admit(self, now: float) -> bool:
        if self._bucket is None or self._bucket.try_acquire(1, now):
            self._refused_in_a_row = 0
            return True
        self._refused_in_a_row += 1
        return False

    @property
    def abusive(self) -> bool:
        return self._refused_in_a_row > self._patience

    @property
    def refusal(self) -> str:
        return f"too many messages on this connection (limit {self._per_minute} per minute); slow down"
