"""OpenAIProvider against the real mock upstream on 127.0.0.1: formats, streaming, error classes."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest

from appliance.core.errors import ProviderError
from appliance.core.ports import ChatMessage, ChatRequest, ImagePart
from appliance.core.routing import ModelSpec
from appliance.providers import OpenAIProvider, make_session
from appliance.providers.openai import parse_retry_after
from bench.mock_upstream import MockUpstream

TOOLS = [{"type": "function", "function": {
    "name": "order_status", "description": "Look up an order",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
}}]


@pytest.fixture
async def mock() -> AsyncIterator[MockUpstream]:
    async with MockUpstream() as upstream:
        yield upstream


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with make_session() as s:
        yield s


def provider(mock: MockUpstream, session: aiohttp.ClientSession, **kw: object) -> OpenAIProvider:
    spec = ModelSpec(name="up", base_url=mock.url, model="mock-7b", **kw)  # type: ignore[arg-type]
    return OpenAIProvider(spec, session, api_key="sk-test")


def ask(text: str, **kw: object) -> ChatRequest:
    return ChatRequest(messages=[ChatMessage(role="system", content="Be brief."),
                                 ChatMessage(role="user", content=text)], **kw)  # type: ignore[arg-type]


async def test_plain_completion_returns_text_and_usage(
    mock: MockUpstream, session: aiohttp.ClientSession,
) -> None:
    result = await provider(mock, session).complete(ask("Where is my parcel?"))
    assert result.text == "Mock answer about: Where is my parcel?"
    assert result.tokens_in > 0 and result.tokens_out == 7
    body = mock.bodies[-1]
    assert body["model"] == "mock-7b" and "stream" not in body
    assert body["messages"][1] == {"role": "user", "content": "Where is my parcel?"}


async def test_streamed_tokens_arrive_in_order_and_make_the_final_text(
    mock: MockUpstream, session: aiohttp.ClientSession,
) -> None:
    mock.set(mode="slow_stream", chunk_delay_ms=5)
    tokens: list[str] = []

    async def on_token(text: str) -> None:
        tokens.append(text)

    result = await provider(mock, session).complete(ask("How do refunds work?"), on_token)
    assert len(tokens) > 3
    assert "".join(tokens) == result.text == "Mock answer about: How do refunds work?"
    assert result.tokens_out == 7  # usage from the final chunk
    assert mock.bodies[-1]["stream_options"] == {"include_usage": True}


async def test_image_parts_are_sent_as_data_urls(mock: MockUpstream, session: aiohttp.ClientSession) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    request = ChatRequest(messages=[ChatMessage(role="user", content="What is broken here?",
                                                images=[ImagePart(media_type="image/png", data=png)])])
    result = await provider(mock, session, vision=True).complete(request)
    assert mock.images == 1
    assert result.text.endswith("(I see 1 image)")
    parts = mock.bodies[-1]["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What is broken here?"}
    assert parts[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png).decode()


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls_parse_from_json_and_from_streamed_deltas(
    mock: MockUpstream, session: aiohttp.ClientSession, stream: bool,
) -> None:
    mock.set(mode="tool_call")
    bare_tool = TOOLS[0]["function"]  # a bare function is wrapped into the OpenAI tools format

    async def sink(text: str) -> None:
        pass

    result = await provider(mock, session).complete(
        ask("status of order 1234", tools=[bare_tool]), sink if stream else None,
    )
    assert result.finish_reason == "tool_calls"
    [call] = result.tool_calls
    assert call.name == "order_status" and call.id == "call_mock_1"
    assert json.loads(call.arguments) == {"query": "status of order 1234"}
    assert mock.bodies[-1]["tools"] == TOOLS


async def test_tool_round_trip_messages_use_the_openai_shape(
    mock: MockUpstream, session: aiohttp.ClientSession,
) -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "order_status", "arguments": "{}"}}
    request = ChatRequest(messages=[
        ChatMessage(role="user", content="status?"),
        ChatMessage(role="assistant", content="", tool_calls=[call]),
        ChatMessage(role="tool", tool_call_id="call_1", content='{"status": "shipped"}'),
    ])
    await provider(mock, session).complete(request)
    sent = mock.bodies[-1]["messages"]
    assert sent[1] == {"role": "assistant", "content": None, "tool_calls": [call]}
    assert sent[2] == {"role": "tool", "content": '{"status": "shipped"}', "tool_call_id": "call_1"}


@pytest.mark.parametrize(("mode", "kind"), [
    ("rate_limit", "rate_limited"), ("error", "server_error"), ("context_too_long", "context_too_long"),
    ("hang", "timeout"), ("drop", "connection"),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_failures_are_translated_into_provider_error_kinds(
    mock: MockUpstream, session: aiohttp.ClientSession, mode: str, kind: str, stream: bool,
) -> None:
    mock.set(mode=mode, retry_after_s=7)
    received: list[str] = []

    async def sink(text: str) -> None:
        received.append(text)

    with pytest.raises(ProviderError) as failure:
        await provider(mock, session).complete(ask("hello there", timeout_s=0.3), sink if stream else None)
    assert failure.value.kind == kind
    if kind == "rate_limited":
        assert failure.value.retry_after_s == 7 and failure.value.status == 429
    if mode == "drop" and stream:
        assert received == ["Mock", " answer"]  # the answer was cut off mid-stream


async def test_a_streaming_request_answered_with_one_json_completion_is_read_whole(
    mock: MockUpstream, session: aiohttp.ClientSession,
) -> None:
    mock.set(mode="ignore_stream")
    received: list[str] = []

    async def sink(text: str) -> None:
        received.append(text)

    result = await provider(mock, session).complete(ask("Where is my parcel?"), sink)
    assert result.text == "Mock answer about: Where is my parcel?"
    assert received == [result.text] and result.tokens_out == len(result.text.split())
    assert mock.requests == 1 and mock.bodies[-1]["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
async def test_a_body_that_is_no_completion_is_a_clear_error_not_a_retry(
    mock: MockUpstream, session: aiohttp.ClientSession, stream: bool,
) -> None:
    mock.set(mode="html")

    async def sink(text: str) -> None:
        raise AssertionError(f"no token expected, got {text!r}")

    with pytest.raises(ProviderError) as failure:
        await provider(mock, session).complete(ask("hello"), sink if stream else None)
    assert failure.value.kind == "bad_response"
    assert ("text/html" if stream else "malformed response") in str(failure.value), failure.value
    assert mock.requests == 1


async def test_unknown_path_is_a_bad_request_and_a_closed_port_is_a_connection_error(
    mock: MockUpstream, session: aiohttp.ClientSession,
) -> None:
    wrong = OpenAIProvider(ModelSpec(name="w", base_url=mock.url + "/nope", model="m"), session, None)
    with pytest.raises(ProviderError) as bad:
        await wrong.complete(ask("hi"))
    assert bad.value.kind == "bad_request" and bad.value.status == 404
    port = mock.port
    await mock.close()
    closed = ModelSpec(name="g", base_url=f"http://127.0.0.1:{port}/v1", model="m")
    gone = OpenAIProvider(closed, session, None)
    with pytest.raises(ProviderError) as refused:
        await gone.complete(ask("hi"))
    assert refused.value.kind == "connection"


def test_retry_after_accepts_seconds_milliseconds_and_http_dates() -> None:
    assert parse_retry_after({"Retry-After": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "1500", "Retry-After": "9"}) == 1.5
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    parsed = parse_retry_after({"Retry-After": when})
    assert parsed is not None and 25 <= parsed <= 31
