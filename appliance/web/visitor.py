"""The visitor API: chat over HTTP, history, and the streaming WebSocket."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

import msgspec
from litestar import Request, get, post, websocket
from litestar.connection import WebSocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import Parameter

from appliance.conversations import AttachmentOut, ChatOutcome, MessageView
from appliance.core.errors import ApplianceError, AuthError, TooLarge
from appliance.runtime import Runtime
from appliance.web.errors import error_body, status_of


class ChatIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    text: Annotated[str, msgspec.Meta(description="The visitor's message.")]
    conversation_id: str | None = None
    visitor_token: str | None = None
    attachments: list[str] = msgspec.field(default_factory=list)


class MessagesOut(msgspec.Struct, kw_only=True):
    conversation_id: str
    messages: list[MessageView]


def bearer(request_headers: dict[str, str] | object) -> str | None:
    header = request_headers.get("authorization") if isinstance(request_headers, dict) else None
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return value.strip()


@post("/api/v1/chat", summary="Send a visitor message and get the bot's reply", status_code=200)
async def chat(data: ChatIn, request: Request[object, object, object], runtime: Runtime) -> ChatOutcome:
    token = data.visitor_token or bearer(dict(request.headers))
    return await runtime.chat(data.text, conversation_id=data.conversation_id, visitor_token=token,
                              attachments=data.attachments)


@get("/api/v1/conversations/{conversation_id:str}/messages", summary="A conversation's messages (visitor)")
async def conversation_messages(
    conversation_id: str, runtime: Runtime,
    authorization: Annotated[str | None, Parameter(header="Authorization")] = None,
) -> MessagesOut:
    token = bearer({"authorization": authorization}) if authorization else None
    messages = await runtime.conversations.messages_for_visitor(conversation_id, token)
    return MessagesOut(conversation_id=conversation_id, messages=messages)


class FeedbackIn(msgspec.Struct, forbid_unknown_fields=True):
    rating: Literal["up", "down"]


@post("/api/v1/attachments", summary="Upload an image (raw body: PNG, JPEG, GIF or WebP)", status_code=201,
      request_max_body_size=64 * 1024 * 1024)
async def upload(request: Request[object, object, object], runtime: Runtime) -> AttachmentOut:
    token = bearer(dict(request.headers))
    limit = runtime.config.server.max_image_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"image is {declared} bytes; the limit is {limit}")
    return await runtime.conversations.store_image(await request.body(), token)


@post("/api/v1/messages/{message_id:str}/feedback", summary="Thumbs up or down on a bot reply", status_code=200)
async def feedback(
    message_id: str, data: FeedbackIn, runtime: Runtime,
    authorization: Annotated[str | None, Parameter(header="Authorization")] = None,
) -> dict[str, str]:
    token = bearer({"authorization": authorization}) if authorization else None
    trace, previous = await runtime.conversations.feedback(message_id, data.rating, token)
    if trace is not None and trace.route:
        runtime.router.record_feedback(trace.route, trace.arm, data.rating, previous)
    return {"message_id": message_id, "rating": data.rating}


_chat_in = msgspec.json.Decoder(ChatIn)


@websocket("/ws/visitor")
async def visitor_socket(socket: WebSocket[object, object, object], runtime: Runtime) -> None:
    """Send ``ChatIn`` JSON frames; receive ``{"type": "token", "text"}`` frames as the reply is
    produced, then ``{"type": "reply", ...ChatOutcome}`` whose text is authoritative (it replaces the
    streamed tokens if a provider failed mid-stream), or ``{"type": "error", ...}``. Messages from a
    human agent (and system notices) arrive as ``{"type": "message", ...MessageView}``."""
    await socket.accept()
    send_lock = asyncio.Lock()
    watching: dict[str, asyncio.Task[None]] = {}

    async def send(frame: dict[str, object]) -> None:
        async with send_lock:
            await socket.send_data(msgspec.json.encode(frame).decode(), mode="text")

    async def forward(conversation_id: str) -> None:
        queue = runtime.hub.watch(conversation_id)
        try:
            while True:
                message = await queue.get()
                if message.role in ("agent", "system"):
                    await send({"type": "message", "conversation_id": conversation_id,
                                **msgspec.structs.asdict(message)})
        finally:
            runtime.hub.unwatch(conversation_id, queue)

    try:
        while True:
            event = await socket.receive()
            if event["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(detail="disconnect event", code=event.get("code", 1000))
            raw = event.get("bytes") or (event.get("text") or "").encode()  # browsers send text frames
            try:
                message = _chat_in.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await send({"type": "error", **error_body(400, "invalid_input", f"invalid message: {exc}")})
                continue

            async def send_token(text: str) -> None:
                await send({"type": "token", "text": text})

            try:
                outcome = await runtime.chat(
                    message.text, conversation_id=message.conversation_id, visitor_token=message.visitor_token,
                    attachments=message.attachments, on_token=send_token,
                )
            except ApplianceError as exc:
                status, code = status_of(exc)
                await send({"type": "error", **error_body(status, code, str(exc))})
                continue
            if outcome.conversation_id not in watching:
                watching[outcome.conversation_id] = asyncio.create_task(forward(outcome.conversation_id))
            await send({"type": "reply", **msgspec.structs.asdict(outcome)})
    except WebSocketDisconnect:
        return
    finally:
        for task in watching.values():
            task.cancel()


ROUTES = [chat, conversation_messages, upload, feedback, visitor_socket]
