"""In-process fan-out of live events to the sockets watching them.

Topics are a conversation id (the visitor's sockets watch their conversation) and
:data:`DESK` (every console socket). A stalled socket loses live pushes, never stored data:
the page re-reads what it missed when it reconnects.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

DESK = "desk"
_BACKLOG = 256


class Hub:
    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Queue[Any]]] = defaultdict(set)

    def watch(self, topic: str) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue(_BACKLOG)
        self._watchers[topic].add(queue)
        return queue

    def unwatch(self, topic: str, queue: asyncio.Queue[Any]) -> None:
        watchers = self._watchers.get(topic)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                del self._watchers[topic]

    def watched(self, topic: str) -> bool:
        return topic in self._watchers

    def publish(self, topic: str, item: Any) -> None:
        for queue in self._watchers.get(topic, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(item)
