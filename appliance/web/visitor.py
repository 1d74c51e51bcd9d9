"""The visitor API: chat over HTTP, history, asking for a person, leaving a message, rating,
uploads, and the streaming WebSocket the widget uses."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

import msgspec
from litestar import Request, Response, get, post, websocket
from litestar.connection import WebSocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import Parameter

from appliance.core.errors import ApplianceError
from appliance.core.events import VisitorProfile
from appliance.core.quotas import FrameBudget
from appliance.core.types import Message
from appliance.desk.conversations import AttachmentOut
from appliance.desk.frames import (
    ChatIn,
    ChatOutcome,
    ErrorFrame,
    HandoffIn,
    HistoryFrame,
    ReplyFrame,
    ResumeIn,
    StatusFrame,
    TokenFrame,
    VisitorTypingIn,
    decode_visitor,
    encode,
)
from appliance.runtime import Runtime
from appliance.web.auth import bearer
from appliance.web.errors import status_of

Authorization = Annotated[str | None, Parameter(header="Authorization", required=False)]


class MessagesOut(msgspec.Struct, kw_only=True):
    conversation_id: str
    messages: list[Message]


class FeedbackIn(msgspec.Struct, forbid_unknown_fields=True):
    rating: Literal["up", "down"]


class FeedbackOut(msgspec.Struct, kw_only=True):
    message_id: str
    rating: Literal["up", "down"]


class HandoffBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    conversation_id: str | None = None
    visitor_token: str | None = None
    language: str | None = None


class TicketIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str
    contact: Annotated[str, msgspec.Meta(description="e-mail address or phone number")]
    message: str
    conversation_id: str | None = None
    visitor_token: str | None = None
    language: str | None = None


class TicketOut(msgspec.Struct, kw_only=True):
    ticket_id: str
    visitor_token: str


class RatingIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    score: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: str = ""


def _profile(request: Request[object, object, object] | WebSocket[object, object, object],
             given: VisitorProfile | None) -> VisitorProfile:
    """What the visitor typed (pre-chat form) plus what the connection tells us."""
    given = given or VisitorProfile()
    return VisitorProfile(
        name=given.name[:200], email=given.email[:200], page=(given.page or request.headers.get("referer", ""))[:1000],
        ip=request.client.host if request.client else "", user_agent=request.headers.get("user-agent", "")[:500],
    )


def _address(connection: Request[object, object, object] | WebSocket[object, object, object]) -> str:
    return connection.client.host if connection.client else ""


def _admit(runtime: Runtime, action: Literal["chat", "upload", "ticket", "handoff"], address: str,
           visitor_token: str | None, conversation_id: str | None = None) -> None:
    """Charge a visitor's request to its limits (``[limits]``); RateLimited (429) when one is spent."""
    visitor = runtime.conversations.visitor(visitor_token) or ""
    charges: list[tuple[str, str]] = []
    if action == "chat":
        charges += [("chat_per_ip", address), ("chat_per_visitor", visitor),
                    ("chat_per_conversation", conversation_id or "")]
    elif action == "upload":
        charges += [("uploads_per_ip", address), ("uploads_per_visitor", visitor)]
    elif action == "ticket":
        charges.append(("tickets_per_ip", address))
    if conversation_id is None and action != "upload":
        charges.append(("new_conversations_per_ip", address))
    runtime.quotas.admit(time.monotonic(), *charges)


@post("/api/v1/chat", summary="Send a visitor message and get the bot's reply", status_code=200)
async def chat(data: ChatIn, request: Request[object, object, object], runtime: Runtime) -> ChatOutcome:
    token = data.visitor_token or bearer(request.headers.get("authorization"))
    _admit(runtime, "chat", _address(request), token, data.conversation_id)
    return await runtime.chat(data.text, conversation_id=data.conversation_id, visitor_token=token,
                              attachments=data.attachments, language=data.language,
                              profile=_profile(request, data.profile) if data.conversation_id is None else None)


@get("/api/v1/conversations/{conversation_id:str}/messages", summary="A conversation's messages (visitor)")
async def conversation_messages(conversation_id: str, runtime: Runtime, authorization: Authorization = None
                                ) -> MessagesOut:
    messages = await runtime.conversations.history(conversation_id, bearer(authorization))
    return MessagesOut(conversation_id=conversation_id, messages=messages)


@post("/api/v1/conversations/handoff", status_code=200, summary="Ask for a person (the widget's button)")
async def handoff(data: HandoffBody, request: Request[object, object, object], runtime: Runtime) -> ChatOutcome:
    token = data.visitor_token or bearer(request.headers.get("authorization"))
    _admit(runtime, "handoff", _address(request), token, data.conversation_id)
    return await runtime.conversations.request_human(
        conversation_id=data.conversation_id, visitor_token=token, language=data.language)


@post("/api/v1/tickets", status_code=201, summary="Leave a message for the agents (no one online / off hours)")
async def leave_message(data: TicketIn, request: Request[object, object, object], runtime: Runtime) -> TicketOut:
    visitor_token = data.visitor_token or bearer(request.headers.get("authorization"))
    _admit(runtime, "ticket", _address(request), visitor_token, data.conversation_id or "")
    ticket_id, token = await runtime.conversations.leave_message(
        name=data.name, contact=data.contact, message=data.message, visitor_token=visitor_token,
        conversation_id=data.conversation_id, language=data.language)
    return TicketOut(ticket_id=ticket_id, visitor_token=token)


@post("/api/v1/conversations/{conversation_id:str}/rating", status_code=200,
      summary="Rate a resolved conversation, 1 to 5, with a comment")
async def rate(conversation_id: str, data: RatingIn, runtime: Runtime, authorization: Authorization = None) -> RatingIn:
    await runtime.conversations.rate(conversation_id, data.score, data.comment, bearer(authorization))
    return data


@post("/api/v1/attachments", summary="Upload an image (raw body: PNG, JPEG, GIF or WebP)", status_code=201,
      request_max_body_size=None)  # web/limits.py bounds it by server.max_image_bytes
async def upload(request: Request[object, object, object], runtime: Runtime) -> AttachmentOut:
    token = bearer(request.headers.get("authorization"))
    _admit(runtime, "upload", _address(request), token)
    return await runtime.conversations.store_image(await request.body(), token)


@get("/api/v1/attachments/{attachment_id:str}", summary="One of the visitor's uploaded images",
     media_type="application/octet-stream")
async def attachment(attachment_id: str, runtime: Runtime, authorization: Authorization = None) -> Response[bytes]:
    media_type, data = await runtime.conversations.image(attachment_id, bearer(authorization))
    return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=86400"})


@post("/api/v1/messages/{message_id:str}/feedback", summary="Thumbs up or down on a bot reply", status_code=200)
async def feedback(message_id: str, data: FeedbackIn, runtime: Runtime, authorization: Authorization = None
                   ) -> FeedbackOut:
    trace, previous = await runtime.conversations.feedback(message_id, data.rating, bearer(authorization))
    if trace is not None and trace.route:
        runtime.router.record_feedback(trace.route, trace.arm, data.rating, previous)
    return FeedbackOut(message_id=message_id, rating=data.rating)


@websocket("/ws/visitor")
async def visitor_socket(socket: WebSocket[object, object, object], runtime: Runtime) -> None:
    """Frames in ``appliance/desk/frames.py``: send ``message`` (a ``ChatIn``; a frame with no
    ``type`` is one), ``resume``, ``typing`` or ``handoff``; receive ``token`` frames while the bot
    writes, then ``reply`` (its text is authoritative), and live ``message`` (agents, notices),
    ``status`` (owner, queue position, wait), ``typing``, ``history`` and ``error`` frames."""
    await socket.accept()
    send_lock = asyncio.Lock()
    watching: dict[str, asyncio.Task[None]] = {}
    address = _address(socket)
    frames = FrameBudget(runtime.config.limits.ws_frames_per_socket_per_minute)

    async def send(frame: msgspec.Struct) -> None:
        async with send_lock:
            await socket.send_data(encode(frame), mode="text")

    async def forward(conversation_id: str) -> None:
        queue = runtime.hub.watch(conversation_id)
        try:
            while True:
                await send(await queue.get())
        finally:
            runtime.hub.unwatch(conversation_id, queue)

    async def watch(conversation_id: str) -> None:
        if conversation_id not in watching:
            watching[conversation_id] = asyncio.create_task(forward(conversation_id))
            await asyncio.sleep(0)  # let it subscribe before the first push
        status = await runtime.switchboard.visitor_status(conversation_id)
        await send(StatusFrame(**msgspec.structs.asdict(status)))

    async def handle(frame: ChatIn | ResumeIn | VisitorTypingIn | HandoffIn) -> None:
        if isinstance(frame, ResumeIn):
            messages = await runtime.conversations.history(frame.conversation_id, frame.visitor_token)
            await send(HistoryFrame(conversation_id=frame.conversation_id, messages=messages))
            await watch(frame.conversation_id)
        elif isinstance(frame, VisitorTypingIn):
            await runtime.conversations.check_visitor(frame.conversation_id, frame.visitor_token)
            runtime.switchboard.visitor_typing(frame.conversation_id, frame.typing)
        elif isinstance(frame, HandoffIn):
            _admit(runtime, "handoff", address, frame.visitor_token, frame.conversation_id)
            outcome = await runtime.conversations.request_human(
                conversation_id=frame.conversation_id, visitor_token=frame.visitor_token, language=frame.language)
            await send(ReplyFrame(**msgspec.structs.asdict(outcome)))
            await watch(outcome.conversation_id)
        else:
            async def send_token(text: str) -> None:
                await send(TokenFrame(text=text))

            _admit(runtime, "chat", address, frame.visitor_token, frame.conversation_id)
            outcome = await runtime.chat(
                frame.text, conversation_id=frame.conversation_id, visitor_token=frame.visitor_token,
                attachments=frame.attachments, on_token=send_token, language=frame.language,
                profile=_profile(socket, frame.profile) if frame.conversation_id is None else None)
            await send(ReplyFrame(**msgspec.structs.asdict(outcome)))
            if outcome.conversation_id not in watching:
                await watch(outcome.conversation_id)

    try:
        while True:
            event = await socket.receive()
            if event["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(detail="disconnect event", code=event.get("code", 1000))
            raw = event.get("bytes") or (event.get("text") or "").encode()  # browsers send text frames
            if not frames.admit(time.monotonic()):
                if frames.abusive:
                    await socket.close(code=1008, reason="too many messages")
                    return
                await send(ErrorFrame(status=429, error="rate_limited", message=frames.refusal))
                continue
            try:
                frame = decode_visitor(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await send(ErrorFrame(status=400, error="invalid_input", message=f"invalid message: {exc}"))
                continue
            try:
                await handle(frame)
            except ApplianceError as exc:
                status, code = status_of(exc)
                await send(ErrorFrame(status=status, error=code, message=str(exc)))
    except WebSocketDisconnect:
        return
    finally:
        for task in watching.values():
            task.cancel()


ROUTES = [chat, conversation_messages, handoff, leave_message, rate, upload, attachment, feedback, visitor_socket]
