"""Answer-cache policy: what the key covers, and the in-process LRU (level L1).

The key covers the normalized question, the knowledge-base version, the prompt template's id
and version, the model route and the intent classifier's version, so a knowledge-base edit, a
model switch or an intent example taught can never serve a stale answer: the old entries simply
stop being asked for.
"""

from __future__ import annotations

import hashlib
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from appliance.core.types import Reply

# Only answers the key's route really gave are cached: a fallback's answer (built-in model,
# extractive quote, another provider) must not outlive the outage that produced it.
CACHEABLE_SOURCES = frozenset({"llm", "knowledge_qa"})


def normalize(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).strip(" ?!.。？！")


def cache_key(text: str, kb_version: int, template: str, route: str, intents: str = "") -> str:
    material = "\x1f".join([normalize(text), str(kb_version), template, route, *([intents] if intents else [])])
    return hashlib.sha256(material.encode()).hexdigest()


class LruCache:
    name: Literal["l1", "l2", "l3"] = "l1"

    def __init__(self, entries: int, ttl_s: float, now: Callable[[], float] = time.monotonic) -> None:
        self._entries = entries
        self._ttl_s = ttl_s
        self._now = now
        self._data: OrderedDict[str, tuple[float, Reply]] = OrderedDict()

    async def get(self, key: str) -> Reply | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, reply = item
        if expires < self._now():
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return reply

    async def put(self, key: str, reply: Reply) -> None:
        self._data[key] = (self._now() + self._ttl_s, reply)
        self._data.move_to_end(key)
        while len(self._data) > self._entries:
            self._data.popitem(last=False)
