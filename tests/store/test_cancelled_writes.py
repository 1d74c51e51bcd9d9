"""A waiter that goes away (a cancelled task: a client hung up, a session closed) never stops the
single writer: every later write still commits."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

from appliance.core import events as ev
from appliance.store import Store


async def test_cancelling_a_write_in_progress_leaves_the_writer_working(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "node.db", "node-a")
    try:
        started, release = threading.Event(), threading.Event()

        def slow(txn):  # type: ignore[no-untyped-def]
            started.set()
            release.wait(10)
            return txn.append(ev.SettingChanged(key="slow", value=b"1"))

        waiting = asyncio.create_task(store.write(slow))
        queued = asyncio.create_task(store.append(ev.SettingChanged(key="queued", value=b"1")))
        await asyncio.to_thread(started.wait, 10)
        waiting.cancel()
        queued.cancel()
        await asyncio.sleep(0.05)
        release.set()
        for task in (waiting, queued):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        written = await asyncio.wait_for(store.append(ev.SettingChanged(key="after", value=b"1")), 10)
        assert written[0].seq > 0
        keys = await store.read(lambda c: {r[0] for r in c.execute("SELECT key FROM settings")})
        assert {"slow", "after"} <= keys  # the write in progress stands; the one not begun may not
    finally:
        store.close()
