"""Answer cache level L2: Redis, shared by the nodes of a site.

Short timeouts and a back-off: after a failure Redis is skipped for a few seconds, so an absent
Redis costs a turn nothing but a recorded miss, never an answer.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec
import redis.asyncio as redis

from appliance.core.types import Reply

_decoder = msgspec.msgpack.Decoder(Reply)
_PREFIX = "appliance:reply:"
_BACKOFF_S = 5.0


class RedisReplyCache:
    name: Literal["l1", "l2", "l3"] = "l2"

    def __init__(self, url: str, ttl_s: int, timeout_s: float = 0.25) -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._ttl_s = ttl_s
        self._down_until = 0.0

    async def get(self, key: str) -> Reply | None:
        if time.monotonic() < self._down_until:
            return None
        try:
            raw = await self._client.get(_PREFIX + key)
        except redis.RedisError:
            self._down_until = time.monotonic() + _BACKOFF_S
            raise
        return _decoder.decode(raw) if raw is not None else None

    async def put(self, key: str, reply: Reply) -> None:
        if time.monotonic() < self._down_until:
            return
        try:
            await self._client.set(_PREFIX + key, msgspec.msgpack.encode(reply), ex=self._ttl_s)
        except redis.RedisError:
            self._down_until = time.monotonic() + _BACKOFF_S
            raise

    async def close(self) -> None:
        await self._client.aclose()
