"""The agent desk: the human queue, taking over from the bot, replying, handing back.

Ownership is explicit: ``bot``, ``queue`` (waiting for a human) or ``agent:<name>``. Only the
owning agent may reply; the bot never answers a conversation it does not own.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from appliance.conversations import ConversationView, MessageView, messages
from appliance.core import events as ev
from appliance.core.errors import Conflict, InputError, NotFound
from appliance.core.hlc import physical_ms
from appliance.core.tokens import new_id
from appliance.core.types import Trace
from appliance.store import Connection, Store

_trace = msgspec.msgpack.Decoder(Trace)


class ConversationDetail(msgspec.Struct, kw_only=True):
    conversation: ConversationView
    messages: list[MessageView]


def _view(row: tuple[str, str, str, str, int, int]) -> ConversationView:
    return ConversationView(id=row[0], visitor_id=row[1], owner=row[2], status=row[3],
                            started_ms=physical_ms(row[4]), updated_ms=physical_ms(row[5]))


_COLUMNS = "id, visitor_id, owner, status, started_hlc, updated_hlc"


def conversation(conn: Connection, conversation_id: str) -> ConversationView:
    row = conn.execute(f"SELECT {_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    if row is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return _view(row)


def trace(conn: Connection, trace_id: str) -> Trace:
    row = conn.execute("SELECT body FROM traces WHERE id = ?", (trace_id,)).fetchone()
    if row is None:
        raise NotFound(f"trace {trace_id} not found")
    return _trace.decode(row[0])


def traces_for(conn: Connection, conversation_id: str) -> dict[str, Trace]:
    rows = conn.execute("SELECT id, body FROM traces WHERE conversation_id = ?", (conversation_id,)).fetchall()
    return {row[0]: _trace.decode(row[1]) for row in rows}


class AgentDesk:
    def __init__(self, store: Store, publish: Callable[[str, MessageView], None]) -> None:
        self._store = store
        self._publish = publish

    async def queue(self, owner: str | None = None, limit: int = 100) -> list[ConversationView]:
        def read(conn: Connection) -> list[ConversationView]:
            if owner:
                sql = f"SELECT {_COLUMNS} FROM conversations WHERE owner = ? ORDER BY updated_hlc DESC LIMIT ?"
                return [_view(r) for r in conn.execute(sql, (owner, limit))]
            sql = (f"SELECT {_COLUMNS} FROM conversations WHERE owner != 'bot' AND status = 'open'"
                   " ORDER BY updated_hlc LIMIT ?")
            return [_view(r) for r in conn.execute(sql, (limit,))]

        return await self._store.read(read)

    async def detail(self, conversation_id: str) -> ConversationDetail:
        def read(conn: Connection) -> ConversationDetail:
            return ConversationDetail(conversation=conversation(conn, conversation_id),
                                      messages=messages(conn, conversation_id))

        return await self._store.read(read)

    async def take(self, conversation_id: str, actor: str, *, force: bool = False) -> ConversationView:
        def work(txn: object) -> None:
            current = conversation(txn.conn, conversation_id)  # type: ignore[attr-defined]
            if current.owner.startswith("agent:") and current.owner != actor and not force:
                raise Conflict(f"conversation {conversation_id} is already taken by {current.owner[6:]}")
            self._own(txn, conversation_id, actor, "taken over by an agent", actor)

        await self._store.write(work)
        await self._notice(conversation_id, "An agent has joined the conversation.")
        return await self._store.read(lambda c: conversation(c, conversation_id))

    async def transfer(self, conversation_id: str, actor: str, to: str) -> ConversationView:
        if not to.strip():
            raise InputError("transfer needs the name of the receiving agent")
        target = to if to in ("queue", "bot") else f"agent:{to.removeprefix('agent:')}"

        def work(txn: object) -> None:
            conversation(txn.conn, conversation_id)  # type: ignore[attr-defined]
            self._own(txn, conversation_id, target, f"transferred by {actor}", actor)

        await self._store.write(work)
        return await self._store.read(lambda c: conversation(c, conversation_id))

    async def hand_back(self, conversation_id: str, actor: str) -> ConversationView:
        def work(txn: object) -> None:
            conversation(txn.conn, conversation_id)  # type: ignore[attr-defined]
            self._own(txn, conversation_id, "bot", "handed back to the bot", actor)

        await self._store.write(work)
        await self._notice(conversation_id, "You are chatting with our virtual assistant again.")
        return await self._store.read(lambda c: conversation(c, conversation_id))

    async def reply(self, conversation_id: str, actor: str, text: str) -> MessageView:
        text = text.strip()
        if not text:
            raise InputError("text must not be empty")
        message_id = new_id("msg")

        def work(txn: object) -> None:
            current = conversation(txn.conn, conversation_id)  # type: ignore[attr-defined]
            if current.owner != actor:
                raise Conflict(f"take conversation {conversation_id} before replying (owner: {current.owner})")
            txn.append(ev.MessageAdded(  # type: ignore[attr-defined]
                message_id=message_id, conversation_id=conversation_id, role="agent", text=text,
                source="agent", author=actor.removeprefix("agent:")))

        await self._store.write(work)
        view = MessageView(id=message_id, role="agent", text=text, source="agent",
                           author=actor.removeprefix("agent:"))
        self._publish(conversation_id, view)
        return view

    async def close(self, conversation_id: str, actor: str) -> ConversationView:
        def work(txn: object) -> None:
            conversation(txn.conn, conversation_id)  # type: ignore[attr-defined]
            txn.append(ev.ConversationClosed(conversation_id=conversation_id, by=actor))  # type: ignore[attr-defined]
            txn.append(ev.AuditRecorded(actor=actor, action="conversation.close",  # type: ignore[attr-defined]
                                        target=conversation_id))

        await self._store.write(work)
        return await self._store.read(lambda c: conversation(c, conversation_id))

    @staticmethod
    def _own(txn: object, conversation_id: str, owner: str, reason: str, actor: str) -> None:
        txn.append(ev.OwnerChanged(conversation_id=conversation_id, owner=owner,  # type: ignore[attr-defined]
                                   reason=reason, by=actor))
        txn.append(ev.AuditRecorded(actor=actor, action="conversation.owner",  # type: ignore[attr-defined]
                                    target=conversation_id, detail=owner))

    async def _notice(self, conversation_id: str, text: str) -> None:
        message = ev.MessageAdded(message_id=new_id("msg"), conversation_id=conversation_id, role="system",
                                  text=text, source="system")
        await self._store.append(message)
        self._publish(conversation_id, MessageView(id=message.message_id, role="system", text=text,
                                                   source="system"))
