"""Answer cache level L3: a table in the node's SQLite file (derived data, not replicated)."""

from __future__ import annotations

import time
from typing import Literal

import msgspec

from appliance.core.types import Reply
from appliance.store import Connection, Store, WriteTxn

_decoder = msgspec.msgpack.Decoder(Reply)


class SqliteReplyCache:
    name: Literal["l1", "l2", "l3"] = "l3"

    def __init__(self, store: Store, ttl_s: int) -> None:
        self._store = store
        self._ttl_ms = ttl_s * 1000

    async def get(self, key: str) -> Reply | None:
        def read(conn: Connection) -> bytes | None:
            row = conn.execute("SELECT reply FROM reply_cache WHERE key = ? AND expires_ms > ?",
                               (key, time.time_ns() // 1_000_000)).fetchone()
            return row[0] if row else None

        raw = await self._store.read(read)
        return _decoder.decode(raw) if raw is not None else None

    async def put(self, key: str, reply: Reply) -> None:
        expires = time.time_ns() // 1_000_000 + self._ttl_ms
        data = msgspec.msgpack.encode(reply)

        def write(txn: WriteTxn) -> None:
            txn.conn.execute("INSERT OR REPLACE INTO reply_cache (key, reply, expires_ms) VALUES (?, ?, ?)",
                             (key, data, expires))

        self._store.write_soon(write)  # a cache entry need not be durable before the reply goes out
