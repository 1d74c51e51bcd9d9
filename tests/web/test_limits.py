"""Hostile input gets a clear 4xx before it costs memory, and floods get 429 with Retry-After.

Each case is one of the defects a probe of the demo server found (issue 9), tried through a
real server: raw sockets for chunked bodies and silent connections, a real WebSocket client for
frames.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.conftest import PER_ADDRESS_LIMITS, Server, init_node
from tests.desk.helpers import Console, add_user, chat, next_frame, request, visitor_socket


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A node with the shipped limits (the test fixtures lift the per-address ones) and short
    connection timeouts, so the tests don't wait long."""
    node = init_node(tmp_path_factory.mktemp("limits") / "node")
    text = node.config.read_text()
    for limit in PER_ADDRESS_LIMITS:
        text = text.replace(f"{limit} = 1000000 # ", f"{limit} = ")
    node.config.write_text(text)
    node.edit_config("header_timeout_s = 10.0", "header_timeout_s = 1.0")
    node.edit_config("body_timeout_s = 30.0", "body_timeout_s = 2.0")
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 0.5")
    node.edit_config("max_image_bytes = 5242880", "max_image_bytes = 100000")
    node.edit_config("new_conversations_per_ip_per_hour = 60", "new_conversations_per_ip_per_hour = 40")
    node.edit_config("ws_frames_per_socket_per_minute = 300", "ws_frames_per_socket_per_minute = 30")
    node.edit_config('widget_frame_ancestors = ["*"]', 'widget_frame_ancestors = ["https://shop.example.com"]')
    server = Server(node).start()
    yield server
    server.stop()


def raw_http(server: Server, head: str, chunks: list[bytes] = (), timeout: float = 10) -> tuple[int, dict[str, Any]]:
    """Send a request head and body chunks over a plain socket; (status, JSON body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and stopped reading: what we want to see
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    head_bytes, _, body = answer.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ", 2)[1])
    return status, json.loads(body[:_length(answer)] or b"{}")


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def chunked(size: int, piece: int = 16384) -> list[bytes]:
    chunks = []
    for start in range(0, size, piece):
        data = b"\x89PNG" + b"\x00" * (min(piece, size - start) - 4)
        chunks.append(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    return [*chunks, b"0\r\n\r\n"]


def visitor(server: Server, text: str = "hello") -> dict[str, Any]:
    return chat(server, text)


def test_a_chunked_upload_over_the_limit_is_refused_at_the_limit(guarded: Server) -> None:
    token = visitor(guarded)["visitor_token"]
    head = (f"POST /api/v1/attachments HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            f"Authorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n")
    status, body = raw_http(guarded, head, chunked(10_000_000))
    assert status == 413, body
    assert body["error"] == "too_large" and "100000" in body["message"]


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(guarded: Server) -> None:
    status, body = raw_http(guarded, "POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     "Content-Length: 50000000\r\n\r\n")
    assert status == 413 and body["error"] == "too_large"


def test_deeply_nested_json_is_a_400_not_a_crash(guarded: Server) -> None:
    status, body, _ = request(guarded, "POST", "/api/v1/chat", b"[" * 100_000)
    assert status == 400, body
    assert "nested too deeply" in body["message"]
    status, body, _ = request(guarded, "POST", "/api/v1/chat", b'{"text": ' * 5000)
    assert status == 400, body


def test_a_body_that_is_not_json_gets_415(guarded: Server) -> None:
    status, body, _ = request(guarded, "POST", "/api/v1/chat", b"text=hello",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415, body
    assert "application/json" in body["message"]
    token = visitor(guarded)["visitor_token"]
    status, body, _ = request(guarded, "POST", "/api/v1/attachments", b"<svg/>",
                              headers={"Content-Type": "image/svg+xml", "Authorization": f"Bearer {token}"})
    assert status == 415, body


def test_a_body_sent_too_slowly_gets_408(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"te")
        answer = b""
        while b"request_timeout" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer


def test_silent_and_slow_header_connections_are_closed(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # the server closed a connection that never spoke
        assert time.monotonic() - started < 8
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        closed = False
        for _ in range(8):  # a header line every 0.5 s: never completes within the deadline
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.5)
        if not closed:
            sock.settimeout(3)
            closed = sock.recv(1) == b""
        assert closed


def test_responses_name_no_server_and_the_widget_page_names_its_allowed_sites(guarded: Server) -> None:
    status, _, headers = request(guarded, "GET", "/healthz")
    assert status == 200 and "server" not in {k.lower() for k in headers}
    assert headers["X-Content-Type-Options"] == "nosniff"
    _, _, headers = request(guarded, "GET", "/chat")
    assert "frame-ancestors https://shop.example.com" in headers["Content-Security-Policy"]
    _, _, headers = request(guarded, "GET", "/console")
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


def test_one_visitor_flooding_a_conversation_gets_429_with_retry_after(guarded: Server) -> None:
    first = visitor(guarded, "你好")
    statuses = []
    retry_after = None
    for n in range(30):
        status, body, headers = request(guarded, "POST", "/api/v1/chat", {
            "text": f"message {n}", "conversation_id": first["conversation_id"],
            "visitor_token": first["visitor_token"]})
        statuses.append(status)
        if status == 429:
            retry_after = headers["Retry-After"]
            assert body["error"] == "rate_limited" and "per minute" in body["message"]
            break
    assert 429 in statuses and 15 <= len(statuses) <= 21, statuses
    assert retry_after is not None and int(retry_after) >= 1
    _, metrics, _ = request(guarded, "GET", "/metrics")
    assert 'appliance_rate_limited{limit="chat_per_visitor"}' in metrics or \
        'appliance_rate_limited{limit="chat_per_conversation"}' in metrics


def test_new_conversations_from_one_address_are_bounded(guarded: Server) -> None:
    refused = 0
    for _ in range(45):
        status, body, _ = request(guarded, "POST", "/api/v1/conversations/handoff", {"language": "zh"})
        if status == 429:
            refused += 1
            assert "new conversations per ip" in body["message"]
    assert refused > 0
    status, _, _ = request(guarded, "GET", "/healthz")
    assert status == 200


def test_websocket_frames_are_bounded_in_size_and_rate(guarded: Server) -> None:
    with connect(f"ws://127.0.0.1:{guarded.port}/ws/visitor", open_timeout=10, max_size=None) as ws:
        ws.send("x" * 200_000)  # over server.max_ws_message_bytes: closed before it is read
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    with visitor_socket(guarded) as ws:
        ws.send("[" * 50_000)
        frame = next_frame(ws, lambda f: f["type"] == "error", "error")
        assert frame["status"] == 400 and "nested too deeply" in frame["message"]
        for _ in range(40):
            ws.send(json.dumps({"type": "typing", "conversation_id": "cnv_x", "visitor_token": "t"}))
        frame = next_frame(ws, lambda f: f["type"] == "error" and f["status"] == 429, "429 frame")
        assert "per minute" in frame["message"]
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(100):
                ws.send("{}")
                time.sleep(0.01)
            while True:
                ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_an_agent_typing_in_an_unknown_conversation_keeps_the_console_socket(tmp_path: Any) -> None:
    node = init_node(tmp_path / "node")
    password = add_user(node, "ann", "agent")
    server = Server(node).start()
    try:
        console = Console(server, "ann", password)
        with console.socket() as ws:
            ws.send(json.dumps({"type": "typing", "conversation_id": "cnv_missing"}))
            frame = next_frame(ws, lambda f: f["type"] == "error", "error")
            assert frame["status"] == 404
            ws.send(json.dumps({"type": "presence", "status": "online"}))
            next_frame(ws, lambda f: f["type"] == "presence", "presence after the error")
    finally:
        server.stop()
