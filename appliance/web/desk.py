"""The agent API (``/api/v1/desk``) and the console's live socket (``/ws/agent``)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Response, get, post, put, websocket
from litestar.connection import WebSocket
from litestar.di import Provide
from litestar.exceptions import WebSocketDisconnect
from litestar.params import Parameter

from appliance.core import permissions
from appliance.core.desk import CannedReply, ConversationDetail, ConversationSummary, InboxFilter, Ticket, User
from appliance.core.errors import ApplianceError, NotFound
from appliance.core.quotas import FrameBudget
from appliance.core.types import Message
from appliance.desk.agents import Inbox
from appliance.desk.frames import (
    AgentIn,
    AgentTypingIn,
    ConversationFrame,
    ErrorFrame,
    HelloFrame,
    MessageFrame,
    PresenceFrame,
    PresenceIn,
    TicketFrame,
    TypingFrame,
    decode_agent,
    encode,
)
from appliance.desk.hub import DESK
from appliance.desk.switchboard import DeskEvent, VisitorTyping
from appliance.runtime import Runtime
from appliance.store import Connection
from appliance.store import desk as queries
from appliance.web.auth import Principal, identify, principal
from appliance.web.errors import status_of


class TextIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    to: Annotated[str, msgspec.Meta(description="account name, or 'queue'")]


class PresenceSet(msgspec.Struct, forbid_unknown_fields=True):
    status: Literal["online", "away", "offline"]


class AgentsOut(msgspec.Struct, kw_only=True):
    agents: list[User]


class CannedOut(msgspec.Struct, kw_only=True):
    replies: list[CannedReply]


class CannedIn(msgspec.Struct, forbid_unknown_fields=True):
    replies: list[CannedReply]


class TicketsOut(msgspec.Struct, kw_only=True):
    tickets: list[Ticket]
    next: int | None = None


class DeskController(Controller):
    path = "/api/v1/desk"
    dependencies = {"who": Provide(principal)}
    tags = ["desk"]

    @get("/conversations", summary="The inbox: mine, queue, bot, all open or resolved, newest first")
    async def inbox(
        self, runtime: Runtime, who: Principal,
        filter_: Annotated[InboxFilter, Parameter(query="filter")] = "open",
        limit: Annotated[int, Parameter(query="limit", ge=1, le=200)] = 50,
        before: Annotated[int | None, Parameter(query="before", ge=0, le=2**63 - 1)] = None,
    ) -> Inbox:
        return await runtime.agents.inbox(who, filter_, limit, before)

    @get("/conversations/{conversation_id:str}", summary="A conversation: messages, traces, the visitor")
    async def detail(self, conversation_id: str, runtime: Runtime, who: Principal) -> ConversationDetail:
        return await runtime.agents.detail(who, conversation_id)

    @post("/conversations/{conversation_id:str}/read", status_code=204, summary="Mark as read")
    async def read(self, conversation_id: str, runtime: Runtime, who: Principal) -> None:
        await runtime.agents.mark_read(who, conversation_id)

    @post("/conversations/{conversation_id:str}/take", status_code=200, summary="Take over (from the bot or queue)")
    async def take(self, conversation_id: str, runtime: Runtime, who: Principal) -> ConversationSummary:
        return await runtime.agents.take(who, conversation_id)

    @post("/conversations/{conversation_id:str}/reply", status_code=200, summary="Reply as the owning agent")
    async def reply(self, conversation_id: str, data: TextIn, runtime: Runtime, who: Principal) -> Message:
        return await runtime.agents.reply(who, conversation_id, data.text)

    @post("/conversations/{conversation_id:str}/note", status_code=200, summary="A private note")
    async def note(self, conversation_id: str, data: TextIn, runtime: Runtime, who: Principal) -> Message:
        return await runtime.agents.note(who, conversation_id, data.text)

    @post("/conversations/{conversation_id:str}/handback", status_code=200, summary="Hand back to the bot")
    async def hand_back(self, conversation_id: str, runtime: Runtime, who: Principal) -> ConversationSummary:
        return await runtime.agents.hand_back(who, conversation_id)

    @post("/conversations/{conversation_id:str}/transfer", status_code=200, summary="Transfer to an agent or the queue")
    async def transfer(self, conversation_id: str, data: TransferIn, runtime: Runtime,
                       who: Principal) -> ConversationSummary:
        return await runtime.agents.transfer(who, conversation_id, data.to)

    @post("/conversations/{conversation_id:str}/close", status_code=200, summary="Resolve")
    async def close(self, conversation_id: str, runtime: Runtime, who: Principal) -> ConversationSummary:
        return await runtime.agents.close(who, conversation_id)

    @post("/conversations/{conversation_id:str}/reopen", status_code=200, summary="Reopen a resolved conversation")
    async def reopen(self, conversation_id: str, runtime: Runtime, who: Principal) -> ConversationSummary:
        return await runtime.agents.reopen(who, conversation_id)

    @get("/agents", summary="Accounts with presence and load (the transfer picker)")
    async def agents(self, runtime: Runtime, who: Principal) -> AgentsOut:
        return AgentsOut(agents=[u for u in await runtime.switchboard.users() if not u.disabled])

    @post("/presence", status_code=200, summary="Set your presence: online, away or offline")
    async def presence(self, data: PresenceSet, runtime: Runtime, who: Principal) -> User:
        runtime.switchboard.presence.choose(who.name, data.status)
        if who.via == "token":
            runtime.switchboard.presence.api_seen(who.name)  # a script stays online while it keeps saying so
        await runtime.switchboard.presence_changed()
        return await runtime.user_view(who.name)

    @get("/canned", summary="Canned replies, picked in the console with /shortcut")
    async def canned(self, runtime: Runtime, who: Principal) -> CannedOut:
        return CannedOut(replies=await runtime.agents.canned())

    @put("/canned", summary="Replace the canned replies (admin)")
    async def set_canned(self, data: CannedIn, runtime: Runtime, who: Principal) -> CannedOut:
        return CannedOut(replies=await runtime.agents.set_canned(who, data.replies))

    @get("/tickets", summary="Left messages (leave-a-message form)")
    async def tickets(
        self, runtime: Runtime, who: Principal,
        status: Annotated[Literal["open", "answered"] | None, Parameter(query="status")] = None,
        limit: Annotated[int, Parameter(query="limit", ge=1, le=200)] = 100,
        before: Annotated[int | None, Parameter(query="before", ge=0, le=2**63 - 1)] = None,
    ) -> TicketsOut:
        tickets, cursor = await runtime.agents.tickets(who, status, limit, before)
        return TicketsOut(tickets=tickets, next=cursor)

    @post("/tickets/{ticket_id:str}/answer", status_code=200, summary="Answer a left message")
    async def answer(self, ticket_id: str, data: TextIn, runtime: Runtime, who: Principal) -> Ticket:
        return await runtime.agents.answer_ticket(who, ticket_id, data.text)

    @get("/attachments/{attachment_id:str}", summary="An uploaded image", media_type="application/octet-stream")
    async def attachment(self, attachment_id: str, runtime: Runtime, who: Principal) -> Response[bytes]:
        def read(c: Connection) -> tuple[str, bytes, str] | None:
            found = queries.attachment(c, attachment_id)
            if found is None or permissions.allowed(who.role, "desk.view_all"):
                return found
            holders = queries.attachment_holders(c, attachment_id)
            return found if any(permissions.may_see(who.role, who.name, o, a) for o, a in holders) else None

        found = await runtime.store.read(read)
        if found is None:
            raise NotFound(f"attachment {attachment_id} not found")
        return Response(found[1], media_type=found[0], headers={"Cache-Control": "private, max-age=86400"})


@websocket("/ws/agent")
async def agent_socket(socket: WebSocket[object, object, object], runtime: Runtime) -> None:
    """The console's live feed: inbox rows, messages, visitor typing, presence, tickets.

    Authenticated by the session cookie (or a bearer header); closed with 4401 without one.
    """
    try:
        who = await identify(socket, runtime, check_csrf=False)
    except ApplianceError:
        await socket.accept()  # a close code only reaches the page after the handshake
        await socket.close(code=4401, reason="sign in first")
        return
    await socket.accept()
    board = runtime.switchboard
    board.presence.connect(who.name)
    queue = runtime.hub.watch(DESK)
    lock = asyncio.Lock()

    async def send(frame: msgspec.Struct) -> None:
        async with lock:
            await socket.send_data(encode(frame), mode="text")

    async def still_signed_in() -> bool:
        """A disabled account, or a session that ended (sign-out, new password), stops here."""
        try:
            await identify(socket, runtime, check_csrf=False)
        except ApplianceError:
            return False
        return True

    async def forward() -> None:
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            # Checked before anything is sent: a disabled account or an ended session sees nothing more.
            if not await still_signed_in():
                await socket.close(code=4401, reason="your session has ended")
                return
            for item in items:
                await deliver(item)

    async def deliver(item: object) -> None:
        if isinstance(item, DeskEvent):
            c = item.conversation
            if not permissions.may_see(who.role, who.name, c.owner, c.assignee):
                return
            if item.message is not None:
                await send(MessageFrame(conversation_id=c.id, message=item.message))
            await send(ConversationFrame(conversation=c, event=item.event))
        elif isinstance(item, VisitorTyping):
            try:
                row = await runtime.store.read(lambda c: queries.row(c, item.conversation_id))
            except NotFound:
                return
            if permissions.may_see(who.role, who.name, row.owner, row.assignee):
                await send(TypingFrame(conversation_id=item.conversation_id, typing=item.typing, who="visitor"))
        elif isinstance(item, PresenceFrame | TicketFrame):
            await send(item)

    async def handle(frame: AgentIn) -> None:
        if isinstance(frame, AgentTypingIn):
            row = await runtime.store.read(lambda c: queries.row(c, frame.conversation_id))
            if permissions.may_act(who.role, who.name, row.owner, row.assignee):
                runtime.hub.publish(frame.conversation_id, TypingFrame(
                    conversation_id=frame.conversation_id, typing=frame.typing, who="agent"))
        elif isinstance(frame, PresenceIn):
            board.presence.choose(who.name, frame.status)
            await board.presence_changed()

    frames = FrameBudget(runtime.config.limits.ws_frames_per_socket_per_minute)
    forwarding = asyncio.create_task(forward())
    try:
        await send(HelloFrame(user=await runtime.user_view(who.name)))
        await board.presence_changed()
        while True:
            event = await socket.receive()
            if event["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(detail="disconnect", code=event.get("code", 1000))
            raw = event.get("bytes") or (event.get("text") or "").encode()
            if not frames.admit(time.monotonic()):
                if frames.abusive:
                    await socket.close(code=1008, reason="too many messages")
                    return
                await send(ErrorFrame(status=429, error="rate_limited", message=frames.refusal))
                continue
            board.presence.activity(who.name)
            try:
                await handle(decode_agent(raw))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await send(ErrorFrame(status=400, error="invalid_input", message=f"invalid frame: {exc}"))
            except ApplianceError as exc:
                status, code = status_of(exc)
                await send(ErrorFrame(status=status, error=code, message=str(exc)))
    except WebSocketDisconnect:
        pass
    finally:
        forwarding.cancel()
        runtime.hub.unwatch(DESK, queue)
        board.presence.disconnect(who.name)


ROUTES = [DeskController, agent_socket]
