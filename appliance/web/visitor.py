"""The visitor API: chat over HTTP, history, and the streaming WebSocket."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Request, get, post, websocket
from litestar.connection import WebSocket
from litestar.exceptions import WebSocketDisconnect
from litestar.params import Parameter

from appliance.conversations import ChatOutcome, MessageView
from appliance.core.errors import ApplianceError, AuthError
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


_chat_in = msgspec.json.Decoder(ChatIn)


@websocket("/ws/visitor")
async def visitor_socket(socket: WebSocket[object, object, object], runtime: Runtime) -> None:
    """Send ``ChatIn`` JSON frames; receive ``{"type": "token", "text"}`` frames as the reply is
    produced, then ``{"type": "reply", ...ChatOutcome}`` whose text is authoritative (it replaces the
    streamed tokens if a provider failed mid-stream), or ``{"type": "error", ...}``."""
    await socket.accept()
    try:
        while True:
            raw = await socket.receive_data(mode="binary")
            try:
                message = _chat_in.decode(raw)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await socket.send_json({"type": "error", **error_body(400, "invalid_input", f"invalid message: {exc}")})
                continue

            async def send_token(text: str) -> None:
                await socket.send_json({"type": "token", "text": text})

            try:
                outcome = await runtime.chat(
                    message.text, conversation_id=message.conversation_id, visitor_token=message.visitor_token,
                    attachments=message.attachments, on_token=send_token,
                )
            except ApplianceError as exc:
                status, code = status_of(exc)
                await socket.send_json({"type": "error", **error_body(status, code, str(exc))})
                continue
            await socket.send_data(msgspec.json.encode({"type": "reply", **msgspec.structs.asdict(outcome)}),
                                   mode="text")
    except WebSocketDisconnect:
        return


ROUTES = [chat, conversation_messages, visitor_socket]
