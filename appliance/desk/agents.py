"""The agent's side of the desk: the inbox, taking over, replying, notes, transfer, hand back,
resolve and reopen, and answering left messages.

Ownership is explicit: ``bot``, ``queue`` (waiting for a human, perhaps assigned to one) or
``agent:<name>``. Every check of who may do what happens inside the write transaction that
does it, so two agents clicking "Take over" at once cannot both win. What each role may do is
decided by ``core/permissions.py`` alone.

Every change is audited with who did it and from where (``Actor.ip``); opening a conversation
is audited as ``conversation.read``, at most once per reader and conversation every
``READ_AUDIT_EVERY_S`` in this process (a reader who keeps the conversation open and refreshes
it is one record, not hundreds).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from appliance.core import events as ev
from appliance.core import permissions
from appliance.core.desk import CannedReply, ConversationDetail, ConversationSummary, InboxFilter, Ticket
from appliance.core.errors import Conflict, Forbidden, InputError, NotFound, TooLarge
from appliance.core.phrases import Phrase, phrase
from appliance.core.quotas import KeyedLimit, Limit
from appliance.core.tokens import new_id
from appliance.core.types import Message
from appliance.desk.frames import ConversationEvent
from appliance.desk.switchboard import Switchboard
from appliance.store import Connection, Store, WriteTxn, accounts, desk

CANNED_KEY = "desk.canned_replies"
READ_AUDIT_EVERY_S = 600.0
_canned = msgspec.json.Decoder(list[CannedReply])
# What a new node starts with (`appliance init`); admins replace them with PUT /api/v1/desk/canned.
STARTER_CANNED = [
    CannedReply(shortcut="hello", text="Hello, thank you for contacting us. How can I help you?"),
    CannedReply(shortcut="wait", text="Thank you for waiting. Let me check that for you."),
    CannedReply(shortcut="bye", text="Is there anything else I can help you with? Have a nice day!"),
    CannedReply(shortcut="nihao", text="您好，我是客服，很高兴为您服务。请问有什么可以帮您？"),
    CannedReply(shortcut="shaodeng", text="感谢您的耐心等待，我马上为您查询。"),
    CannedReply(shortcut="zaijian", text="请问还有其他可以帮您的吗？祝您生活愉快！"),
]


def canned_setting(replies: list[CannedReply]) -> ev.SettingChanged:
    return ev.SettingChanged(key=CANNED_KEY, value=msgspec.json.encode(replies))


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who acts at the desk: an account name (or a token's name), its role, and the address it
    came from (the HTTP client's; ``local`` for the CLI)."""

    name: str
    role: str
    ip: str = ""

    @property
    def owner(self) -> str:
        return f"agent:{self.name}"

    @property
    def audit_name(self) -> str:
        return f"{self.role}:{self.name}"


class Inbox(msgspec.Struct, kw_only=True):
    conversations: list[ConversationSummary]
    counts: dict[str, int]
    next: int | None = None


class AgentDesk:
    def __init__(self, store: Store, switchboard: Switchboard, *, max_text_chars: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._switchboard = switchboard
        self._max_text_chars = max_text_chars
        self._clock = clock
        self._reads = KeyedLimit(Limit("conversation_read_audit", 1, READ_AUDIT_EVERY_S), max_keys=100_000)

    # -- reading -----------------------------------------------------------------------

    async def inbox(self, actor: Actor, which: InboxFilter, limit: int = 50, before: int | None = None) -> Inbox:
        def read(conn: Connection) -> Inbox:
            rows, cursor = desk.inbox(conn, which, actor.name, actor.role, limit=limit, before=before)
            return Inbox(conversations=rows, counts=desk.counts(conn, actor.name, actor.role), next=cursor)

        return await self._store.read(read)

    async def detail(self, actor: Actor, conversation_id: str) -> ConversationDetail:
        def read(conn: Connection) -> ConversationDetail:
            summary = desk.summary(conn, conversation_id, actor.name)
            _require_visible(actor, summary.owner, summary.assignee, conversation_id)
            visitor, rating = desk.visitor_panel(conn, conversation_id)
            traces = {tid: desk.trace_summary(t) for tid, t in desk.traces_for(conn, conversation_id).items()}
            return ConversationDetail(conversation=summary, messages=desk.messages(conn, conversation_id),
                                      traces=traces, visitor=visitor, rating=rating)

        found = await self._store.read(read)
        if self._reads.bucket(f"{actor.audit_name}\n{conversation_id}").try_acquire(1, self._clock()):
            record = ev.AuditRecorded(actor=actor.audit_name, action="conversation.read", target=conversation_id,
                                      ip=actor.ip)
            self._store.write_soon(lambda txn: txn.append(record))  # the reader does not wait for it
        return found

    async def mark_read(self, actor: Actor, conversation_id: str) -> None:
        await self._store.read(lambda c: desk.row(c, conversation_id))
        await self._store.write(lambda txn: desk.mark_read(txn.conn, actor.name, conversation_id))

    async def canned(self) -> list[CannedReply]:
        raw = await self._store.read(lambda c: desk.setting(c, CANNED_KEY))
        return _canned.decode(raw) if raw else []

    async def set_canned(self, actor: Actor, replies: list[CannedReply]) -> list[CannedReply]:
        _require(actor, "settings.manage")
        shortcuts = [r.shortcut.strip().lstrip("/") for r in replies]
        if any(not s or " " in s for s in shortcuts) or len(set(shortcuts)) != len(shortcuts):
            raise InputError("each canned reply needs a unique shortcut without spaces")
        cleaned = [CannedReply(shortcut=s, text=self._text(r.text)) for s, r in zip(shortcuts, replies, strict=True)]
        await self._store.append(
            canned_setting(cleaned),
            ev.AuditRecorded(actor=actor.audit_name, action="desk.canned_replies", detail=f"{len(cleaned)} replies",
                             ip=actor.ip, after=", ".join(r.shortcut for r in cleaned)))
        return cleaned

    # -- ownership -----------------------------------------------------------------------

    async def take(self, actor: Actor, conversation_id: str) -> ConversationSummary:
        _require(actor, "desk.take")

        def check(row: desk.ConversationRow) -> bool:
            if row.owner == actor.owner:
                return False
            if row.status != "open":
                raise Conflict(f"conversation {conversation_id} is resolved; reopen it first")
            others = row.owner.startswith("agent:") or (row.assignee not in ("", actor.name))
            if others and not permissions.allowed(actor.role, "desk.take_any"):
                holder = row.owner.removeprefix("agent:") if row.owner.startswith("agent:") else row.assignee
                raise Forbidden(f"conversation {conversation_id} belongs to {holder}; ask a supervisor to transfer it")
            return True

        return await self._change_owner(actor, conversation_id, actor.owner, "taken over", check, "agent_joined",
                                        action="take")

    async def hand_back(self, actor: Actor, conversation_id: str) -> ConversationSummary:
        def check(row: desk.ConversationRow) -> bool:
            _require_acting(actor, row)
            return row.owner != "bot"

        return await self._change_owner(actor, conversation_id, "bot", "handed back to the bot", check, "handed_back",
                                        action="hand_back")

    async def transfer(self, actor: Actor, conversation_id: str, to: str) -> ConversationSummary:
        _require(actor, "desk.transfer")
        to = to.strip().removeprefix("agent:")
        if not to:
            raise InputError("transfer needs the name of the receiving agent, or 'queue'")
        if to != "queue":
            target = await self._store.read(lambda c: accounts.account(c, to))
            if target is None or target.disabled:
                raise InputError(f"no enabled account named {to!r} to transfer to")
        owner = "queue" if to == "queue" else f"agent:{to}"

        def check(row: desk.ConversationRow) -> bool:
            _require_acting(actor, row)
            if row.status != "open":
                raise Conflict(f"conversation {conversation_id} is resolved; reopen it first")
            return row.owner != owner

        notice: Phrase | None = None if to == "queue" else "transferred"
        return await self._change_owner(actor, conversation_id, owner, f"transferred by {actor.name}", check, notice,
                                        agent=to, action="transfer")

    async def _change_owner(
        self, actor: Actor, conversation_id: str, owner: str, reason: str,
        check: Callable[[desk.ConversationRow], bool], notice: Phrase | None, agent: str = "", *, action: str,
    ) -> ConversationSummary:
        names: dict[str, str] = await self._store.read(
            lambda c: {a.name: a.display_name or a.name for a in accounts.accounts(c)})
        notice_message: list[Message] = []

        def work(txn: WriteTxn) -> bool:
            row = desk.row(txn.conn, conversation_id)
            _require_permitted(actor, row)
            if not check(row):
                return False
            assignee = owner.removeprefix("agent:") if owner.startswith("agent:") else ""
            txn.append(ev.OwnerChanged(conversation_id=conversation_id, owner=owner, reason=reason, by=actor.owner,
                                       assignee=assignee))
            txn.append(ev.AuditRecorded(actor=actor.audit_name, action=f"conversation.{action}",
                                        target=conversation_id, ip=actor.ip, before=row.owner, after=owner))
            if notice is not None:
                who = agent or actor.name
                message = Message(id=new_id("msg"), conversation_id=conversation_id, role="system", source="system",
                                  text=phrase(notice, row.language, agent=names.get(who, who)))
                txn.append(ev.MessageAdded(message=message))
                notice_message.append(message)
            return True

        if await self._store.write(work):
            await self._announce(conversation_id, "owner", notice_message[0] if notice_message else None)
        return await self._store.read(lambda c: desk.summary(c, conversation_id, actor.name))

    async def close(self, actor: Actor, conversation_id: str) -> ConversationSummary:
        _require(actor, "desk.close")
        notice: list[Message] = []

        def work(txn: WriteTxn) -> bool:
            row = desk.row(txn.conn, conversation_id)
            _require_permitted(actor, row)
            if row.owner.startswith("agent:"):
                _require_acting(actor, row)
            if row.status == "closed":
                return False
            message = Message(id=new_id("msg"), conversation_id=conversation_id, role="system", source="system",
                              text=phrase("resolved", row.language))
            txn.append(ev.MessageAdded(message=message))
            txn.append(ev.ConversationClosed(conversation_id=conversation_id, by=actor.owner))
            txn.append(ev.AuditRecorded(actor=actor.audit_name, action="conversation.close", target=conversation_id,
                                        ip=actor.ip, before="open", after="closed"))
            notice.append(message)
            return True

        if await self._store.write(work):
            await self._announce(conversation_id, "closed", notice[0])
        return await self._store.read(lambda c: desk.summary(c, conversation_id, actor.name))

    async def reopen(self, actor: Actor, conversation_id: str) -> ConversationSummary:
        _require(actor, "desk.reopen")

        def work(txn: WriteTxn) -> bool:
            row = desk.row(txn.conn, conversation_id)
            _require_permitted(actor, row)
            if row.status == "open":
                return False
            txn.append(ev.ConversationReopened(conversation_id=conversation_id, owner=actor.owner, by=actor.owner))
            txn.append(ev.AuditRecorded(actor=actor.audit_name, action="conversation.reopen", target=conversation_id,
                                        ip=actor.ip, before=row.owner, after=actor.owner))
            return True

        if await self._store.write(work):
            await self._announce(conversation_id, "reopened")
        return await self._store.read(lambda c: desk.summary(c, conversation_id, actor.name))

    # -- writing -------------------------------------------------------------------------

    async def reply(self, actor: Actor, conversation_id: str, text: str) -> Message:
        _require(actor, "desk.reply")
        message = Message(id=new_id("msg"), conversation_id=conversation_id, role="agent", text=self._text(text),
                          source="agent", author=actor.name)

        def work(txn: WriteTxn) -> None:
            row = desk.row(txn.conn, conversation_id)
            if row.owner != actor.owner:
                _require_permitted(actor, row)
                raise Conflict(f"take conversation {conversation_id} over before replying")
            if row.status != "open":
                raise Conflict(f"conversation {conversation_id} is resolved; reopen it first")
            txn.append(ev.MessageAdded(message=message))
            desk.mark_read(txn.conn, actor.name, conversation_id)

        await self._store.write(work)
        await self._announce(conversation_id, "message", message)
        return message

    async def note(self, actor: Actor, conversation_id: str, text: str) -> Message:
        """A private note: agents see it in the conversation; visitors and the bot never do."""
        _require(actor, "desk.note")
        message = Message(id=new_id("msg"), conversation_id=conversation_id, role="note", text=self._text(text),
                          source="note", author=actor.name)

        def work(txn: WriteTxn) -> None:
            row = desk.row(txn.conn, conversation_id)
            _require_permitted(actor, row)
            txn.append(ev.MessageAdded(message=message))

        await self._store.write(work)
        await self._announce(conversation_id, "message", message)
        return message

    async def tickets(self, actor: Actor, status: str | None, limit: int = 100,
                      before: int | None = None) -> tuple[list[Ticket], int | None]:
        """A page of left messages, newest first, and the cursor of the next page."""
        _require(actor, "desk.tickets")
        return await self._store.read(lambda c: desk.tickets(c, status, limit, before))

    async def answer_ticket(self, actor: Actor, ticket_id: str, text: str) -> Ticket:
        """Answer a left message; the answer also appears in the visitor's conversation, if any."""
        _require(actor, "desk.tickets")
        text = self._text(text)
        posted: list[Message] = []

        def work(txn: WriteTxn) -> None:
            found = desk.ticket(txn.conn, ticket_id)
            txn.append(ev.TicketAnswered(ticket_id=ticket_id, answer=text, by=actor.name))
            txn.append(ev.AuditRecorded(actor=actor.audit_name, action="ticket.answer", target=ticket_id,
                                        ip=actor.ip, before=found.status, after="answered"))
            if found.conversation_id:
                message = Message(id=new_id("msg"), conversation_id=found.conversation_id, role="agent",
                                  source="agent", author=actor.name,
                                  text=phrase("ticket_answered", found.language, answer=text))
                txn.append(ev.MessageAdded(message=message))
                posted.append(message)

        await self._store.write(work)
        await self._switchboard.ticket_changed(ticket_id)
        ticket = await self._store.read(lambda c: desk.ticket(c, ticket_id))
        if posted:
            await self._announce(ticket.conversation_id, "message", posted[0])
        return ticket

    def _text(self, text: str) -> str:
        text = text.strip()
        if not text:
            raise InputError("text must not be empty")
        if len(text) > self._max_text_chars:
            raise TooLarge(f"text is {len(text)} characters; the limit is {self._max_text_chars}")
        return text

    async def _announce(self, conversation_id: str, event: ConversationEvent, message: Message | None = None) -> None:
        await self._switchboard.notify(conversation_id, event, message)


def _require(actor: Actor, action: permissions.Action) -> None:
    if not permissions.allowed(actor.role, action):
        raise Forbidden(f"a {actor.role} may not do {action}")


def _require_visible(actor: Actor, owner: str, assignee: str, conversation_id: str) -> None:
    if not permissions.may_see(actor.role, actor.name, owner, assignee):
        raise NotFound(f"conversation {conversation_id} not found")


def _require_permitted(actor: Actor, row: desk.ConversationRow) -> None:
    """Changing a conversation another agent holds: 403 with the reason (it exists; the agent
    may not act on it)."""
    if not permissions.may_see(actor.role, actor.name, row.owner, row.assignee):
        raise Forbidden("this conversation is another agent's: only they or a supervisor may change it")


def _require_acting(actor: Actor, row: desk.ConversationRow) -> None:
    if not permissions.may_act(actor.role, actor.name, row.owner, row.assignee):
        holder = row.owner.removeprefix("agent:")
        raise Forbidden(f"only {holder} (the owner) or a supervisor may do that")
