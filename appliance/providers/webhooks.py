"""Sending the outbox: the task in ``appliance serve`` that delivers due webhooks.

It reads the deliveries that are due (``store/webhooks.py``), POSTs each signed body on the
shared aiohttp session, then records every attempt in one write: a 2xx answer delivers it, any
other answer or error schedules the next attempt with exponential backoff and jitter
(``core/webhooks.retry_delay_s``) until ``give_up_after_s`` after its event, when it is marked
failed. A delivery is marked only after its attempt, so a node killed in between sends it again
after the restart, with the same delivery id: at least once, never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp

from appliance.core import webhooks as wh
from appliance.core.config import WebhooksConfig
from appliance.store import Connection, Store
from appliance.store import webhooks as outbox

log = logging.getLogger("appliance.webhooks")
MAX_ERROR_CHARS = 300


class WebhookSender:
    def __init__(self, store: Store, config: WebhooksConfig) -> None:
        self._store = store
        self._config = config
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.backlog = 0  # pending deliveries, as of the last look at the outbox
        self.oldest_ms: int | None = None  # created_ms of the oldest pending one

    def oldest_age_s(self) -> float:
        return 0.0 if self.oldest_ms is None else max(0.0, time.time() - self.oldest_ms / 1000)

    def start(self, session: aiohttp.ClientSession) -> None:
        self._task = asyncio.create_task(self._run(session), name="webhook-sender")

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll (a test event was queued)."""
        self._wake.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, session: aiohttp.ClientSession) -> None:
        while True:
            try:
                sent = await self.send_due(session)
            except asyncio.CancelledError:
                raise
            except Exception:  # the store is closing, or a bug: keep the task alive
                log.exception("webhook delivery round failed")
                sent = 0
            if sent < self._config.batch:  # a full batch: more may be due at once
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._config.poll_s)

    async def send_due(self, session: aiohttp.ClientSession) -> int:
        now_ms = time.time_ns() // 1_000_000

        def look(conn: Connection) -> tuple[list[outbox.Due], tuple[int, int | None]]:
            return outbox.due(conn, now_ms, self._config.batch), outbox.backlog(conn)

        due, (self.backlog, self.oldest_ms) = await self._store.read(look)
        if not due:
            return 0
        outcomes = await asyncio.gather(*(self._attempt(session, d) for d in due))
        await self._store.write(lambda txn: outbox.record(txn.conn, list(outcomes)))
        return len(due)

    async def _attempt(self, session: aiohttp.ClientSession, d: outbox.Due) -> outbox.Outcome:
        started = time.perf_counter()
        at_ms = time.time_ns() // 1_000_000
        headers = wh.headers(d.secret, d.id, d.event, d.body, at_ms // 1000)
        status, error = 0, ""
        try:
            async with session.post(d.url, data=d.body, headers=headers, allow_redirects=False,
                                    timeout=aiohttp.ClientTimeout(total=self._config.timeout_s)) as response:
                status = response.status
                await response.content.read(65_536)  # the answer is not used; a little is read
                if not 200 <= status < 300:
                    error = f"HTTP {status} {response.reason or ''}".strip()
        except TimeoutError:
            error = f"no answer within {self._config.timeout_s:g} s"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS] or type(exc).__name__
        latency_ms = (time.perf_counter() - started) * 1000
        delivered = 200 <= status < 300
        next_ms = 0
        if not delivered:
            delay_s = wh.retry_delay_s(d.attempts + 1, self._config.retry_base_s, self._config.retry_max_s)
            next_ms = at_ms + int(delay_s * 1000)
            if next_ms > d.created_ms + int(self._config.give_up_after_s * 1000):
                next_ms = 0  # past the deadline: failed for good
                log.warning("webhook delivery %s to %s failed for good after %d attempts: %s", d.id, d.url,
                            d.attempts + 1, error)
        return outbox.Outcome(delivery_id=d.id, at_ms=at_ms, status_code=status, error=error,
                              latency_ms=round(latency_ms, 1), delivered=delivered, next_attempt_ms=next_ms)
