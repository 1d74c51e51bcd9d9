"""The model routing table, stored as a last-writer-wins setting and applied live.

The CLI, the admin API and replication all change the table the same way: a
``SettingChanged("routing")`` event plus an audit record. The server polls the setting's
``(hlc, origin)`` once a second and swaps the router's table when it moved, so a change made
by `appliance model ...` against the database reaches the running server without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import msgspec

from appliance.core import events as ev
from appliance.core.routing import RoutingTable
from appliance.store import Connection, Store, WriteTxn

KEY = "routing"
log = logging.getLogger("appliance.routing")
_decoder = msgspec.json.Decoder(RoutingTable)


def load_table(conn: Connection) -> tuple[RoutingTable, tuple[int, str]]:
    row = conn.execute("SELECT value, hlc, origin FROM settings WHERE key = ?", (KEY,)).fetchone()
    if row is None:
        return RoutingTable(), (0, "")
    return _decoder.decode(row[0]), (row[1], row[2])


TableChange = Callable[[RoutingTable], RoutingTable]


def change_table(change: TableChange, actor: str, action: str, detail: str = "", *,
                 ip: str = "local") -> Callable[[WriteTxn], RoutingTable]:
    """A write: read the current table, apply ``change`` (which validates), store it, audit it
    with the table before and after (as JSON). ``ip`` is where the change came from: the
    client's address, or ``local`` for the CLI on this machine."""

    def work(txn: WriteTxn) -> RoutingTable:
        current, _ = load_table(txn.conn)
        table = change(current)
        encoded = msgspec.json.encode(table)
        txn.append(ev.SettingChanged(key=KEY, value=encoded))
        txn.append(ev.AuditRecorded(actor=actor, action=f"model.{action}", target=KEY, detail=detail, ip=ip,
                                    before=msgspec.json.encode(current).decode(), after=encoded.decode()))
        return table

    return work


class RoutingWatcher:
    """Keeps a router's table equal to the stored one."""

    def __init__(self, store: Store, apply: Callable[[RoutingTable], None], interval_s: float = 1.0) -> None:
        self._store = store
        self._apply = apply
        self._interval_s = interval_s
        self._version: tuple[int, str] = (-1, "")
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> RoutingTable | None:
        table, version = await self._store.read(load_table)
        if version == self._version:
            return None
        self._version = version
        self._apply(table)
        return table

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.refresh()
            except Exception:
                log.exception("could not apply the stored routing table")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
