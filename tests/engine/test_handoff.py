"""Handoff to a human: the queue, taking over, the bot staying silent, agent replies on the
visitor's WebSocket, handing back, and leave-a-message when no agent is online."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.conftest import Node, Server
from tests.engine.harness import call, chat, new_token, running, upstreams

Frame = dict[str, Any]


def _socket(server: Server) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{server.port}/ws/visitor", open_timeout=10)


def _next(ws: ClientConnection, wanted: Callable[[Frame], bool], what: str, timeout: float = 10) -> Frame:
    """The next frame ``wanted`` accepts (others, e.g. streamed tokens, are passed over)."""
    seen: list[Frame] = []
    while True:
        try:
            frame: Frame = json.loads(ws.recv(timeout=timeout))
        except TimeoutError:
            raise AssertionError(f"no {what} frame within {timeout}s; got {seen}") from None
        if wanted(frame):
            return frame
        seen.append(frame)


def _admin(server: Server, token: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    return call(server.url, method, f"/api/v1/desk/conversations{path}", body, token=token)


def test_queue_take_reply_and_hand_back(node: Node, tmp_path: Path) -> None:
    # Every upstream down and a budget too small for the built-in model: the chain ends at a human.
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 0.3")
    with upstreams(tmp_path, "up1") as (up1,):
        up1.set(mode="error")
        up1.add_to(node, "--retries", "0")
        node.cli("model", "use", "up1")
        for name in ("alice", "bob"):
            node.cli("user", "add", name, "--role", "agent")
        alice = new_token(node, "agent", "alice")
        bob = new_token(node, "agent", "bob")
        with running(node) as server:
            # Nobody is at the desk yet: no agent is online, so the visitor may leave a message.
            offline = chat(server, "My card was charged twice")
            assert offline["reply"]["source"] == "leave_message", offline
            assert "leave your message" in offline["reply"]["text"]
            assert offline["owner"] == "human"

            status, queue = _admin(server, alice, "GET", "?filter=queue")
            assert status == 200, queue
            waiting = {c["id"]: (c["owner"], c["position"]) for c in queue["conversations"]}
            assert waiting == {offline["conversation_id"]: ("queue", 1)}

            # Alice comes online: the waiting conversation is assigned to her, and the next handoff
            # tells the visitor a human is coming.
            status, me = call(server.url, "POST", "/api/v1/desk/presence", {"status": "online"}, token=alice)
            assert status == 200 and me["presence"] == "online", me
            status, queue = _admin(server, alice, "GET", "?filter=mine")
            assert [(c["id"], c["assignee"]) for c in queue["conversations"]] == [(offline["conversation_id"], "alice")]
            visitor = chat(server, "I need help with a refund")
            assert visitor["reply"]["source"] == "handoff", visitor
            assert "human" in visitor["reply"]["text"]
            assert visitor["owner"] == "human"
            conversation = visitor["conversation_id"]
            status, queue = _admin(server, alice, "GET", "?filter=queue")
            assert conversation in {c["id"] for c in queue["conversations"]}

            with _socket(server) as ws:
                ws.send(json.dumps({"text": "Hello? Is someone there?", "conversation_id": conversation,
                                    "visitor_token": visitor["visitor_token"]}).encode())
                waiting_reply = _next(ws, lambda f: f["type"] in ("reply", "error"), "reply")
                assert waiting_reply["type"] == "reply", waiting_reply
                assert waiting_reply["reply"] is None and waiting_reply["owner"] == "human", waiting_reply

                status, taken = _admin(server, alice, "POST", f"/{conversation}/take")
                assert status == 200 and taken["owner"] == "agent:alice", taken
                joined = _next(ws, lambda f: f["type"] == "message", "agent-joined notice")["message"]
                assert joined["role"] == "system" and "alice" in joined["text"], joined

                # Bob (an agent) may not reply in Alice's conversation or take it: 403, with the reason.
                for action, body in (("reply", {"text": "Bob here"}), ("take", None)):
                    status, answer = _admin(server, bob, "POST", f"/{conversation}/{action}", body)
                    assert status == 403 and "another agent's" in answer["message"], (action, answer)

                calls = up1.requests
                silent = chat(server, "I paid 40 euros on Monday", visitor)
                assert silent["reply"] is None and silent["owner"] == "human", silent
                assert up1.requests == calls  # the bot did not even try

                status, sent = _admin(server, alice, "POST", f"/{conversation}/reply",
                                      {"text": "Hi, I'm Alice. I see the double charge and refund it now."})
                assert status == 200, sent
                pushed = _next(ws, lambda f: f["type"] == "message" and f["message"]["role"] == "agent",
                               "agent message")["message"]
                assert pushed["text"] == "Hi, I'm Alice. I see the double charge and refund it now."
                assert pushed["author"] == "alice" and pushed["conversation_id"] == conversation

                up1.set(mode="ok")
                status, back = _admin(server, alice, "POST", f"/{conversation}/handback")
                assert status == 200 and back["owner"] == "bot", back
                _next(ws, lambda f: f["type"] == "message" and f["message"]["role"] == "system", "handed-back notice")

            resumed = chat(server, "Thanks! How long does a refund take?", visitor)
            assert resumed["owner"] == "bot", resumed
            assert resumed["reply"] is not None and resumed["reply"]["source"] == "llm", resumed
            assert up1.requests == calls + 1

            status, history = call(server.url, "GET", f"/api/v1/conversations/{conversation}/messages",
                                   token=visitor["visitor_token"])
            assert status == 200, history
            roles = [m["role"] for m in history["messages"]]
            assert roles == ["visitor", "bot", "visitor", "system", "visitor", "agent", "system", "visitor", "bot"]
            status, queue = _admin(server, alice, "GET", "?filter=queue")
            assert conversation not in {c["id"] for c in queue["conversations"]}


def test_visitor_socket_accepts_json_sent_as_a_text_frame(node: Node) -> None:
    """A browser widget sends ``ws.send(JSON.stringify(message))``: a text frame."""
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 0.3")
    with running(node) as server, _socket(server) as ws:
        ws.send(json.dumps({"text": "Hello, is anyone there?"}))
        frame = _next(ws, lambda f: f["type"] in ("reply", "error"), "reply")
        assert frame["type"] == "reply", frame
        assert frame["reply"]["text"], frame
