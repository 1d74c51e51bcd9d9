"""The OpenAI-compatible API: ``POST /v1/chat/completions`` and ``GET /v1/models``.

An ``api`` bearer token (``appliance token create --role api``) calls it with any OpenAI client.
A request is one visitor turn through ``Runtime.chat``, the same engine, store and desk as the
widget: the last user message is the turn's text; the conversation keeps its own history, so
earlier messages in the request are not replayed. The ``user`` field names the caller's end
user: the same token and ``user`` continue that user's open conversation (the visitor id is
derived from both, so nothing extra is stored); without ``user`` every request starts a new one.
Errors on these paths are in OpenAI's format (``web/errors.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.params import Parameter
from litestar.response import Stream

from appliance.core import permissions
from appliance.core.errors import ApplianceError, AuthError, Forbidden, InputError, NotFound
from appliance.core.language import detect
from appliance.core.phrases import phrase
from appliance.core.tokens import new_id
from appliance.core.types import Citation, ReplySource
from appliance.desk.frames import ChatOutcome
from appliance.runtime import Runtime
from appliance.web.auth import bearer, client_address, token_owner
from appliance.web.errors import openai_error_body, status_of

MODEL = "appliance"
Authorization = Annotated[str | None, Parameter(header="Authorization", required=False)]


class ModelNotFound(NotFound):
    openai_code = "model_not_found"
    openai_param = "model"


class BadMessages(InputError):
    openai_param = "messages"


class ContentPart(msgspec.Struct, kw_only=True):
    type: str
    text: str = ""


class MessageIn(msgspec.Struct, kw_only=True):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: bool = False


class ChatCompletionIn(msgspec.Struct, kw_only=True):
    """What the engine uses of OpenAI's request; sampling fields (temperature, max_tokens ...)
    are accepted and ignored, since the appliance's routing decides them."""

    model: str
    messages: Annotated[list[MessageIn], msgspec.Meta(min_length=1)]
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: Annotated[str, msgspec.Meta(max_length=256)] | None = None


class AssistantMessage(msgspec.Struct, kw_only=True):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(msgspec.Struct, kw_only=True):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(msgspec.Struct, kw_only=True):
    """Estimated: about four characters a token, one a Chinese character (the engine may have
    used several models, or none, for a turn)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ApplianceInfo(msgspec.Struct, kw_only=True):
    """The appliance's own account of the answer, beside OpenAI's fields (clients ignore it)."""

    conversation_id: str
    message_id: str
    trace_id: str
    source: ReplySource | Literal["human"]
    owner: Literal["bot", "human"]
    citations: list[Citation]


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL
    choices: list[Choice]
    usage: Usage
    appliance: ApplianceInfo


class Delta(msgspec.Struct, kw_only=True, omit_defaults=True):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(msgspec.Struct, kw_only=True):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str = MODEL
    choices: list[ChunkChoice]
    usage: Usage | None = None
    appliance: ApplianceInfo | None = None


class ModelOut(msgspec.Struct, kw_only=True):
    id: str = MODEL
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "appliance"


class ModelList(msgspec.Struct, kw_only=True):
    object: Literal["list"] = "list"
    data: list[ModelOut]


async def _caller(request: Request[object, object, object], runtime: Runtime) -> str:
    """The token id of an ``api`` token; AuthError (401) or Forbidden (403) otherwise."""
    token = bearer(request.headers.get("authorization"))
    if token is None:
        raise AuthError("no API key: send 'Authorization: Bearer <token>' (`appliance token create --role api`)")
    owner = await token_owner(token, client_address(request), runtime)
    if not permissions.allowed(owner.role, "openai.chat"):
        raise Forbidden(f"this needs a token made with `appliance token create --role api` (this one is {owner.role})")
    return owner.token_id


def _turn_text(messages: list[MessageIn]) -> str:
    last = messages[-1]
    if last.role != "user":
        raise BadMessages("the last message must be the user's (role 'user'): it is the turn the appliance answers")
    if isinstance(last.content, list):
        if any(part.type != "text" for part in last.content):
            raise BadMessages("only text content parts are supported")
        return "\n".join(part.text for part in last.content)
    return last.content or ""


def _visitor(token_id: str, user: str | None) -> str:
    if not user:
        return new_id("vis")
    return "vis_api_" + hashlib.sha256(f"{token_id}\0{user}".encode()).hexdigest()[:24]


def _tokens(text: str) -> int:
    wide = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return wide + math.ceil((len(text) - wide) / 4)


def _usage(question: str, answer: str) -> Usage:
    prompt, completion = _tokens(question), _tokens(answer)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


def _answer(outcome: ChatOutcome, question: str) -> tuple[str, ApplianceInfo]:
    """The reply text, or (a person owns the conversation) a sentence saying one is on it."""
    reply = outcome.reply
    text = reply.text if reply is not None else phrase("human_handling", detect(question))
    info = ApplianceInfo(conversation_id=outcome.conversation_id, message_id=outcome.message_id,
                         trace_id=outcome.trace_id, source=reply.source if reply is not None else "human",
                         owner=outcome.owner, citations=reply.citations if reply is not None else [])
    return text, info


async def _prepare(data: ChatCompletionIn, request: Request[object, object, object], runtime: Runtime
                   ) -> tuple[str, str | None, str]:
    """(turn text, conversation id or None, visitor token), charged to the visitor's limits."""
    token_id = await _caller(request, runtime)
    if data.model != MODEL:
        raise ModelNotFound(f"The model '{data.model}' does not exist; this appliance serves '{MODEL}'")
    text = _turn_text(data.messages)
    if not text.strip():
        raise BadMessages("the last user message is empty")
    visitor_id = _visitor(token_id, data.user)
    conversation_id, visitor_token = await runtime.conversations.thread(visitor_id)
    runtime.quotas.admit(time.monotonic(), ("chat_per_visitor", visitor_id),
                         ("chat_per_conversation", conversation_id or ""))
    await runtime.wait_ready(runtime.config.engine.turn_budget_s)
    return text, conversation_id, visitor_token


def _frame(payload: msgspec.Struct | dict[str, Any]) -> bytes:
    return b"data: " + msgspec.json.encode(payload) + b"\n\n"


@post("/v1/chat/completions", status_code=200, summary="OpenAI-compatible chat completion (an `api` token)")
async def chat_completions(data: ChatCompletionIn, request: Request[object, object, object], runtime: Runtime
                           ) -> Response[Any]:
    text, conversation_id, visitor_token = await _prepare(data, request, runtime)
    created = int(time.time())
    if not data.stream:
        outcome = await runtime.chat(text, conversation_id=conversation_id, visitor_token=visitor_token)
        answer, info = _answer(outcome, text)
        choice = Choice(message=AssistantMessage(content=answer))
        return Response(ChatCompletion(id=f"chatcmpl-{info.message_id}", created=created, choices=[choice],
                                       usage=_usage(text, answer), appliance=info))
    include_usage = data.stream_options is not None and data.stream_options.include_usage
    return Stream(_stream(runtime, text, conversation_id, visitor_token, created, include_usage),
                  media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _stream(runtime: Runtime, text: str, conversation_id: str | None, visitor_token: str, created: int,
                  include_usage: bool) -> AsyncIterator[bytes]:
    """Role first, then the engine's tokens as it writes them, then the rest of the stored reply
    and ``finish_reason``, then ``[DONE]``. When the engine replaced what it had streamed (a
    fallback took over mid-answer), the stored reply follows after a blank line."""
    tokens: asyncio.Queue[str | None] = asyncio.Queue()

    async def sink(token: str) -> None:
        tokens.put_nowait(token)

    # The turn runs to its end even if the client goes away: its reply and trace are stored.
    turn = asyncio.ensure_future(runtime.chat(text, conversation_id=conversation_id, visitor_token=visitor_token,
                                              on_token=sink))
    turn.add_done_callback(lambda _: tokens.put_nowait(None))
    chunk_id = f"chatcmpl-{new_id('str')}"

    def chunk(delta: Delta, **extra: Any) -> bytes:
        return _frame(ChatCompletionChunk(id=chunk_id, created=created,
                                          choices=[ChunkChoice(delta=delta, finish_reason=extra.pop("finish", None))],
                                          **extra))

    yield chunk(Delta(role="assistant", content=""))
    sent = ""
    while (token := await tokens.get()) is not None:
        sent += token
        yield chunk(Delta(content=token))
    try:
        outcome = turn.result()
    except ApplianceError as exc:
        status, _ = status_of(exc)
        yield _frame(openai_error_body(status, str(exc), getattr(exc, "openai_param", None),
                                       getattr(exc, "openai_code", None)))
        yield b"data: [DONE]\n\n"
        return
    answer, info = _answer(outcome, text)
    rest = answer[len(sent):] if answer.startswith(sent) else ("\n\n" if sent else "") + answer
    if rest:
        yield chunk(Delta(content=rest))
    yield chunk(Delta(), finish="stop", appliance=info)
    if include_usage:
        yield _frame(ChatCompletionChunk(id=chunk_id, created=created, choices=[], usage=_usage(text, answer)))
    yield b"data: [DONE]\n\n"


@get("/v1/models", summary="OpenAI-compatible model list: the appliance's engine, `appliance`")
async def models(request: Request[object, object, object], runtime: Runtime) -> ModelList:
    await _caller(request, runtime)
    return ModelList(data=[ModelOut()])


@get("/v1/models/{model:str}", summary="One model of the OpenAI-compatible list")
async def model(model: str, request: Request[object, object, object], runtime: Runtime) -> ModelOut:
    await _caller(request, runtime)
    if model != MODEL:
        raise ModelNotFound(f"The model '{model}' does not exist; this appliance serves '{MODEL}'")
    return ModelOut()


ROUTES = [chat_completions, models, model]
