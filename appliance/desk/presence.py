"""Who is at the desk: online, away or offline, per account, in this process.

An account is online while one of its console sockets is open (or, for scripts with a bearer
token, for ``away_after_s`` after each ``POST /api/v1/desk/presence``), and for ``grace_s`` after
the last socket closed so a reload is not a sign-out. It is away when it says so or after ``away_after_s`` without
activity. Presence is live state, not history: it is not written to the event log.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from appliance.core.desk import Presence


class PresenceBoard:
    def __init__(self, away_after_s: float, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._away_after_s = away_after_s
        self._grace_s = grace_s
        self._clock = clock
        self._sockets: dict[str, int] = {}
        self._closed_at: dict[str, float] = {}
        self._activity: dict[str, float] = {}
        self._api_seen: dict[str, float] = {}
        self._chosen: dict[str, Presence] = {}

    def connect(self, name: str) -> None:
        self._sockets[name] = self._sockets.get(name, 0) + 1
        self.activity(name)

    def disconnect(self, name: str) -> None:
        self._sockets[name] = max(0, self._sockets.get(name, 0) - 1)
        if not self._sockets[name]:
            self._closed_at[name] = self._clock()

    def activity(self, name: str) -> None:
        self._activity[name] = self._clock()

    def api_seen(self, name: str) -> None:
        self._api_seen[name] = self._clock()
        self.activity(name)

    def choose(self, name: str, status: Presence) -> None:
        self._chosen[name] = status
        self.activity(name)

    def status(self, name: str) -> Presence:
        now = self._clock()
        if self._chosen.get(name) == "offline":
            return "offline"
        connected = (
            self._sockets.get(name, 0) > 0
            or now - self._closed_at.get(name, -1e12) < self._grace_s
            or now - self._api_seen.get(name, -1e12) < self._away_after_s
        )
        if not connected:
            return "offline"
        if self._chosen.get(name) == "away" or now - self._activity.get(name, -1e12) > self._away_after_s:
            return "away"
        return "online"

    def known(self) -> set[str]:
        return set(self._sockets) | set(self._api_seen) | set(self._chosen)

    def snapshot(self) -> dict[str, Presence]:
        return {name: self.status(name) for name in self.known()}
