"""The switchboard: tells everyone watching what changed, and hands waiting conversations to agents.

After every change to a conversation the desk services call :meth:`Switchboard.notify`. It
publishes the new inbox row to the consoles, the visitor's status (owner, place in the queue,
expected wait) to the widget, and, when the queue may have moved, assigns waiting
conversations to online agents with free capacity (see ``core/assignment.py``). Assignment is
written as an event in a transaction that checks the conversation still waits unassigned, so
two nodes or two drains never give one conversation twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import statistics
import time
from collections import deque
from collections.abc import Callable

import msgspec

from appliance.core import events as ev
from appliance.core.assignment import AgentLoad, expected_wait_s, plan
from appliance.core.config import DeskConfig
from appliance.core.desk import ConversationSummary, Presence, User, VisitorStatus
from appliance.core.desk_settings import business_hours
from appliance.core.hours import BusinessHours
from appliance.core.types import Message
from appliance.desk.frames import ConversationEvent, MessageFrame, PresenceFrame, StatusFrame, TicketFrame
from appliance.desk.hub import DESK, Hub
from appliance.desk.presence import PresenceBoard
from appliance.store import Connection, Store, WriteTxn, accounts, desk, desk_settings

log = logging.getLogger("appliance.desk")
_QUEUE_EVENTS = {"handoff", "assigned", "owner", "closed", "reopened", "presence"}
# Event types a replicated batch shows on the desk, and as which desk event.
_REPLICATED_KINDS: dict[str, ConversationEvent] = {
    "conversation.started": "created", "message.added": "message", "conversation.owner": "owner",
    "conversation.assigned": "assigned", "conversation.closed": "closed", "conversation.reopened": "reopened",
    "conversation.rated": "rated", "ticket.created": "message", "ticket.answered": "message",
}


class DeskEvent(msgspec.Struct, kw_only=True):
    """What the consoles are told; each console socket filters it by its user's permissions."""

    conversation: ConversationSummary
    event: ConversationEvent
    message: Message | None = None


class VisitorTyping(msgspec.Struct, kw_only=True):
    conversation_id: str
    typing: bool


class Switchboard:
    def __init__(self, store: Store, hub: Hub, config: DeskConfig,
                 now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        self._store = store
        self._hub = hub
        self._config = config
        self._now = now
        self.hours = BusinessHours(config.hours, config.timezone, config.holidays)
        self.presence = PresenceBoard(config.away_after_s, config.offline_grace_s)
        self._last_assigned: dict[str, float] = {}
        self._taken_at: dict[str, float] = {}
        self._handle_s: deque[float] = deque(maxlen=200)
        self._drain_lock = asyncio.Lock()
        self._last_presence: dict[str, Presence] = {}
        # Enabled accounts, refreshed every second: a bearer token that is no account, or a
        # disabled account whose console is still open, never counts as someone at the desk.
        self._enabled: set[str] = set()
        self.waiting = 0  # conversations in the human queue, as of the last queue change
        self._task: asyncio.Task[None] | None = None

    # -- state -------------------------------------------------------------------------

    def open_now(self) -> bool:
        return self.hours.open_at(self._now())

    async def load_hours(self) -> None:
        """Use the hours in force: the Settings page's when an admin set them, else the config's."""
        stored = await self._store.read(desk_settings.stored_hours)
        self.hours = business_hours(stored) if stored else BusinessHours(
            self._config.hours, self._config.timezone, self._config.holidays)

    async def hours_changed(self) -> None:
        """The hours were changed here in the console or at another site: the next decision uses
        them, waiting visitors see whether someone can still answer, and the queue moves if open."""
        await self.load_hours()
        await self.drain()
        await self.broadcast_queue()

    def online(self) -> list[str]:
        return [name for name, status in self.presence.snapshot().items()
                if status == "online" and name in self._enabled]

    def humans_available(self) -> bool:
        """Someone can answer now: within business hours and at least one account online."""
        return self.open_now() and bool(self.online())

    def presence_counts(self) -> dict[str, int]:
        counts = {"online": 0, "away": 0, "offline": 0}
        for name in self._enabled:
            counts[self.presence.status(name)] += 1
        return counts

    def handle_time_s(self) -> float:
        return statistics.median(self._handle_s) if len(self._handle_s) >= 3 else float(self._config.handle_time_s)

    async def users(self) -> list[User]:
        def read(conn: Connection) -> tuple[list[accounts.Account], dict[str, int]]:
            return accounts.accounts(conn), desk.loads(conn)

        found, loads = await self._store.read(read)
        self._enabled = {a.name for a in found if not a.disabled}
        views = []
        for account in found:
            view = account.view()
            view.presence = "offline" if account.disabled else self.presence.status(account.name)
            view.load = loads.get(account.name, 0)
            views.append(view)
        return views

    async def visitor_status(self, conversation_id: str) -> VisitorStatus:
        def read(conn: Connection) -> tuple[desk.ConversationRow, int, dict[str, str]]:
            row = desk.row(conn, conversation_id)
            names = {a.name: a.display_name or a.name for a in accounts.accounts(conn)}
            return row, desk.position(conn, conversation_id), names

        row, position, names = await self._store.read(read)
        online = self.online()
        agent = row.owner.removeprefix("agent:") if row.owner.startswith("agent:") else row.assignee
        owner = "agent" if row.owner.startswith("agent:") else ("queue" if row.owner == "queue" else "bot")
        return VisitorStatus(
            conversation_id=conversation_id, owner=owner, status=row.status, position=position,
            wait_s=expected_wait_s(position, len(online), self.handle_time_s()),
            agent=names.get(agent, agent) if agent else "", agents_online=bool(online), open_now=self.open_now(),
            rated=row.rating is not None,
        )

    # -- telling people ------------------------------------------------------------------

    async def notify(self, conversation_id: str, event: ConversationEvent, message: Message | None = None, *,
                     assign: bool = True) -> None:
        queue_moved = event in _QUEUE_EVENTS
        if message is not None and message.role in ("agent", "system"):
            self._hub.publish(conversation_id, MessageFrame(conversation_id=conversation_id, message=message))
        if not queue_moved and not self._hub.watched(DESK) and event != "rated":
            return  # nobody at a console: a plain bot turn costs no extra read
        summary = await self._store.read(lambda c: desk.summary(c, conversation_id))
        self._track_handle_time(summary)
        self._hub.publish(DESK, DeskEvent(conversation=summary, event=event, message=message))
        if queue_moved:
            if assign:
                await self.drain()
            await self.broadcast_queue(also=conversation_id)
        elif self._hub.watched(conversation_id) and event == "rated":
            await self._push_status(conversation_id)

    async def replicated(self, events: list[ev.Event]) -> None:
        """Events another site wrote, just applied here, shown live as local ones are: agents'
        replies reach a visitor connected to this site, consoles' inboxes move. One desk update
        per conversation per batch. Nothing is assigned here for them: the site where the visitor
        asked for a person does that."""
        latest: dict[str, ConversationEvent] = {}
        if any(event.type == "setting.changed" for event in events):
            await self.hours_changed()
        for event in events:
            if event.type not in _REPLICATED_KINDS:
                continue
            p = ev.decode_payload(event.payload)
            if isinstance(p, ev.TicketCreated | ev.TicketAnswered):
                await self.ticket_changed(p.ticket_id)
            elif isinstance(p, ev.MessageAdded):
                if p.message.role in ("agent", "system"):
                    self._hub.publish(p.message.conversation_id,
                                      MessageFrame(conversation_id=p.message.conversation_id, message=p.message))
                latest[p.message.conversation_id] = "message"
            elif isinstance(p, ev.OwnerChanged):
                latest[p.conversation_id] = "handoff" if p.owner == "queue" else "owner"
            else:
                latest[p.conversation_id] = _REPLICATED_KINDS[event.type]
        for conversation_id, kind in latest.items():
            await self.notify(conversation_id, kind, assign=False)

    async def ticket_changed(self, ticket_id: str) -> None:
        ticket = await self._store.read(lambda c: desk.ticket(c, ticket_id))
        self._hub.publish(DESK, TicketFrame(ticket=ticket))

    def visitor_typing(self, conversation_id: str, typing: bool) -> None:
        self._hub.publish(DESK, VisitorTyping(conversation_id=conversation_id, typing=typing))

    async def broadcast_queue(self, also: str | None = None) -> None:
        ids = set(await self._store.read(desk.waiting_ids))
        self.waiting = len(ids)
        if also:
            ids.add(also)
        for conversation_id in ids:
            if self._hub.watched(conversation_id):
                await self._push_status(conversation_id)

    async def _push_status(self, conversation_id: str) -> None:
        status = await self.visitor_status(conversation_id)
        self._hub.publish(conversation_id, StatusFrame(**msgspec.structs.asdict(status)))

    async def presence_changed(self) -> None:
        users = await self.users()
        self._hub.publish(DESK, PresenceFrame(agents=users))
        self._last_presence = {u.name: u.presence for u in users}
        for name in self.presence.known() - set(self._last_presence):
            self._last_presence[name] = "offline"
        await self.drain()
        await self.broadcast_queue()

    def _track_handle_time(self, summary: ConversationSummary) -> None:
        now = time.monotonic()
        if summary.owner.startswith("agent:") and summary.status == "open":
            self._taken_at.setdefault(summary.id, now)
        elif summary.id in self._taken_at:
            self._handle_s.append(now - self._taken_at.pop(summary.id))

    # -- assignment ----------------------------------------------------------------------

    async def drain(self) -> None:
        """Assign waiting conversations to online agents with free capacity, oldest first."""
        async with self._drain_lock:
            def read(conn: Connection) -> tuple[list[str], dict[str, int], list[accounts.Account]]:
                return desk.waiting(conn), desk.loads(conn), accounts.accounts(conn)

            waiting, loads, found = await self._store.read(read)
            self._enabled = {a.name for a in found if not a.disabled}
            if not waiting or not self.open_now():
                return
            candidates = [
                AgentLoad(name=a.name, capacity=a.capacity, load=loads.get(a.name, 0),
                          last_assigned=self._last_assigned.get(a.name, 0.0))
                for a in found if not a.disabled and self.presence.status(a.name) == "online"
            ]
            for conversation_id, agent in plan(waiting, candidates, time.monotonic()):
                if await self._store.write(_assign(conversation_id, agent)):
                    self._last_assigned[agent] = time.monotonic()
                    summary = await self._store.read(lambda c, cid=conversation_id: desk.summary(c, cid))
                    self._hub.publish(DESK, DeskEvent(conversation=summary, event="assigned"))

    # -- background ----------------------------------------------------------------------

    async def start(self) -> None:
        await self.load_hours()
        self._enabled = {a.name for a in await self._store.read(accounts.accounts) if not a.disabled}
        self.waiting = len(await self._store.read(desk.waiting_ids))
        self._task = asyncio.create_task(self._watch_presence())

    async def _watch_presence(self) -> None:
        """Away-after-idle and offline-after-grace happen with no request: look every second."""
        while True:
            await asyncio.sleep(1.0)
            try:
                found = await self._store.read(accounts.accounts)
                self._enabled = {a.name for a in found if not a.disabled}
                current = {name: self.presence.status(name) if name in self._enabled else "offline"
                           for name in self.presence.known()}
                if any(self._last_presence.get(name, "offline") != status for name, status in current.items()):
                    await self.presence_changed()
            except Exception:
                log.exception("presence check failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _assign(conversation_id: str, agent: str) -> Callable[[WriteTxn], bool]:
    def work(txn: WriteTxn) -> bool:
        row = desk.row(txn.conn, conversation_id)
        if row.owner != "queue" or row.assignee or row.status != "open":
            return False
        txn.append(ev.ConversationAssigned(conversation_id=conversation_id, assignee=agent))
        return True

    return work
