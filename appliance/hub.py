"""In-process fan-out of new messages to the sockets watching a conversation."""

from __future__ import annotations

import asyncio
from collections import defaultdict

from appliance.conversations import MessageView

_BACKLOG = 100


class Hub:
    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Queue[MessageView]]] = defaultdict(set)

    def watch(self, conversation_id: str) -> asyncio.Queue[MessageView]:
        queue: asyncio.Queue[MessageView] = asyncio.Queue(_BACKLOG)
        self._watchers[conversation_id].add(queue)
        return queue

    def unwatch(self, conversation_id: str, queue: asyncio.Queue[MessageView]) -> None:
        watchers = self._watchers.get(conversation_id)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                del self._watchers[conversation_id]

    def publish(self, conversation_id: str, message: MessageView) -> None:
        for queue in self._watchers.get(conversation_id, ()):
            if queue.full():  # a stalled socket loses live pushes, never the stored message
                queue.get_nowait()
            queue.put_nowait(message)
