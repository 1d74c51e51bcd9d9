"""A small pool of read-only connections, one per worker thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from appliance.store.db import Connection, connect

T = TypeVar("T")


class ReadPool:
    def __init__(self, path: Path, size: int) -> None:
        self._path = path
        self._local = threading.local()
        self._connections: list[Connection] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=max(1, size), thread_name_prefix="sqlite-reader")

    def _connection(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def submit(self, work: Callable[[Connection], T]) -> Future[T]:
        return self._executor.submit(lambda: work(self._connection()))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
