"""The visitor API over real HTTP against `appliance serve`, with the built-in model answering."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tests.conftest import Server


def call(server: Server, method: str, path: str, body: bytes | dict[str, Any] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(f"{server.url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw.decode()


def test_first_chat_gets_a_model_answer_and_a_visitor_token(shared_server: Server) -> None:
    status, body = call(shared_server, "POST", "/api/v1/chat", {"text": "Hello! Can you help me with my account?"})
    assert status == 200, body
    assert body["conversation_id"].startswith("conv_")
    assert body["visitor_token"]
    assert body["trace_id"]
    reply = body["reply"]
    assert reply["source"] == "local_model"
    assert len(reply["text"].split()) >= 3
    assert "Can you help me with my account" not in reply["text"]  # a real answer, not an echo


def test_history_needs_the_visitors_own_token(shared_server: Server) -> None:
    _, first = call(shared_server, "POST", "/api/v1/chat", {"text": "Hi there"})
    conversation, token = first["conversation_id"], first["visitor_token"]
    status, second = call(shared_server, "POST", "/api/v1/chat",
                          {"text": "And on Sundays?", "conversation_id": conversation, "visitor_token": token})
    assert status == 200, second
    assert second["conversation_id"] == conversation

    status, history = call(shared_server, "GET", f"/api/v1/conversations/{conversation}/messages",
                           headers={"Authorization": f"Bearer {token}"})
    assert status == 200
    roles = [m["role"] for m in history["messages"]]
    assert roles == ["visitor", "bot", "visitor", "bot"]
    assert history["messages"][0]["text"] == "Hi there"

    _, stranger = call(shared_server, "POST", "/api/v1/chat", {"text": "I am someone else"})
    status, body = call(shared_server, "GET", f"/api/v1/conversations/{conversation}/messages",
                        headers={"Authorization": f"Bearer {stranger['visitor_token']}"})
    assert status == 404
    assert "Hi there" not in json.dumps(body)
    status, _ = call(shared_server, "POST", "/api/v1/chat", {
        "text": "let me in", "conversation_id": conversation, "visitor_token": stranger["visitor_token"]})
    assert status == 404
    status, _ = call(shared_server, "GET", f"/api/v1/conversations/{conversation}/messages")
    assert status == 401


def test_bad_input_gets_a_readable_4xx_and_the_server_keeps_serving(shared_server: Server) -> None:
    cases: list[tuple[bytes | dict[str, Any], int, str]] = [
        (b"{not json", 400, ""),
        ({"conversation_id": "x"}, 400, "text"),
        ({"text": 42}, 400, "text"),
        ({"text": "   "}, 400, "empty"),
        ({"text": "x" * 5000}, 413, "limit"),
        (b'{"text": "\xff\xfe"}', 400, ""),
        ({"text": "hi", "conversation_id": "conv_missing"}, 401, "visitor_token"),
        ({"text": "hi", "visitor_token": "forged.token"}, 401, "invalid"),
    ]
    for body, status, words in cases:
        got, answer = call(shared_server, "POST", "/api/v1/chat", body)
        assert got == status, (body, answer)
        assert answer["status"] == status and answer["message"], answer
        assert words in answer["message"], answer
    _, good = call(shared_server, "POST", "/api/v1/chat", {"text": "hi"})
    status, answer = call(shared_server, "POST", "/api/v1/chat", {
        "text": "hi", "conversation_id": "conv_unknown", "visitor_token": good["visitor_token"]})
    assert status == 404, answer
    status, answer = call(shared_server, "GET", "/healthz")
    assert status == 200 and answer["status"] == "ok"


def test_readyz_schema_and_metrics(shared_server: Server) -> None:
    status, ready = call(shared_server, "GET", "/readyz")
    assert status == 200 and ready["ready"] is True
    status, schema = call(shared_server, "GET", "/schema/openapi.json")
    assert status == 200
    assert "/api/v1/chat" in schema["paths"]
    call(shared_server, "POST", "/api/v1/chat", {"text": "What can you do?"})
    status, text = call(shared_server, "GET", "/metrics")
    assert status == 200
    assert 'appliance_turns_total{source="local_model"}' in text
    assert "appliance_turn_seconds_bucket" in text


def test_a_token_with_non_ascii_characters_is_refused_cleanly_and_json_is_not_sniffed(shared_server: Server) -> None:
    for token in ("é.é", "访客.令牌"):
        status, answer = call(shared_server, "POST", "/api/v1/chat",
                              {"text": "hello", "conversation_id": "conv_x", "visitor_token": token})
        assert status == 401 and answer["error"] == "unauthorized", answer
    request = urllib.request.Request(f"{shared_server.url}/api/v1/conversations/conv_x/messages",
                                     headers={"Authorization": "Bearer \u00e9.\u00e9"})
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("a forged token was accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
        assert exc.headers["X-Content-Type-Options"] == "nosniff"
