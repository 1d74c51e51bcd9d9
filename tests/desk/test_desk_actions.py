"""What agents do at the desk: transfer, who may act on whose conversation, resolve and rate,
reopen, private notes, left messages (tickets) and their answers, canned replies -- and
``/readyz`` while the models are not loaded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from websockets.sync.client import ClientConnection

from appliance.core.phrases import PHRASES
from tests.conftest import Node, Server
from tests.desk.helpers import (
    Console,
    add_user,
    chat,
    drain,
    handoff,
    make_node,
    next_frame,
    request,
    resume,
    starting,
    user_cli,
    visitor_messages,
    visitor_socket,
    wait_for,
)

EN = PHRASES["en"]
ZH = PHRASES["zh"]


class Desk:
    def __init__(self, node: Node, server: Server, passwords: dict[str, str]) -> None:
        self.node, self.server, self.passwords = node, server, passwords
        self.admin = Console(server, "admin", node.admin_password)
        self.alice, self.bob, self.sue = (Console(server, n, passwords[n]) for n in ("alice", "bob", "sue"))

    def owned_by(self, console: Console, **visitor: Any) -> dict[str, Any]:
        """A visitor who asked for a person, taken over by ``console``."""
        asked = handoff(self.server, **visitor)
        status, taken = console.desk("POST", f"/{asked['conversation_id']}/take")
        assert status == 200 and taken["owner"] == f"agent:{console.name}", taken
        return asked


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    node = make_node(tmp_path_factory.mktemp("actions") / "node")
    accounts = {"alice": ("agent",), "bob": ("agent", "--display-name", "Bob Builder"), "sue": ("supervisor",),
                "dan": ("agent",)}
    with starting(node) as server:
        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = {name: pool.submit(add_user, node, name, args[0], None, *args[1:])
                       for name, args in accounts.items()}
            passwords = {name: future.result() for name, future in futures.items()}
        assert user_cli(node, "disable", "dan").returncode == 0
        server.wait_ready()
        yield Desk(node, server, passwords)


@contextmanager
def watching(server: Server, visitor: dict[str, Any]) -> Iterator[ClientConnection]:
    """A visitor socket that resumed ``visitor``'s conversation and follows it live."""
    with visitor_socket(server) as ws:
        resume(ws, visitor)
        yield ws


def system_texts(server: Server, visitor: dict[str, Any]) -> list[str]:
    return [m["text"] for m in visitor_messages(server, visitor) if m["role"] == "system"]


def test_transfer_to_another_agent(desk: Desk) -> None:
    visitor = desk.owned_by(desk.alice)
    cid = visitor["conversation_id"]
    with watching(desk.server, visitor) as ws:
        status, moved = desk.alice.desk("POST", f"/{cid}/transfer", {"to": "bob"})
        assert status == 200 and moved["owner"] == "agent:bob", moved
        notice = next_frame(ws, lambda f: f["type"] == "message", "transfer notice")["message"]
        assert notice["role"] == "system" and notice["text"] == EN["transferred"].format(agent="Bob Builder"), notice
        status_frame = next_frame(ws, lambda f: f["type"] == "status" and f["owner"] == "agent", "status")
        assert status_frame["agent"] == "Bob Builder", status_frame

        assert cid in {c["id"] for c in desk.bob.inbox("mine")}
        assert cid not in {c["id"] for c in desk.alice.inbox("mine")}
        status, sent = desk.bob.desk("POST", f"/{cid}/reply", {"text": "Bob here, I will sort it out."})
        assert status == 200 and sent["author"] == "bob", sent
        pushed = next_frame(ws, lambda f: f["type"] == "message" and f["message"]["role"] == "agent", "reply")
        assert pushed["message"]["text"] == "Bob here, I will sort it out."
    assert desk.alice.desk("POST", f"/{cid}/reply", {"text": "Alice again"})[0] in (403, 404, 409)
    assert [m["text"] for m in visitor_messages(desk.server, visitor) if m["role"] == "agent"] == [
        "Bob here, I will sort it out."]


def test_transfer_to_a_missing_or_disabled_account_is_400(desk: Desk) -> None:
    visitor = desk.owned_by(desk.alice)
    cid = visitor["conversation_id"]
    for target in ("nobody-here", "dan", ""):
        status, body = desk.alice.desk("POST", f"/{cid}/transfer", {"to": target})
        assert status == 400 and body["error"] == "invalid_input" and body["message"], (target, body)
    assert desk.alice.detail(cid)["conversation"]["owner"] == "agent:alice"
    assert system_texts(desk.server, visitor) == [EN["agent_joined"].format(agent="alice")]


def test_an_agent_cannot_act_on_another_agents_conversation_but_a_supervisor_can(desk: Desk) -> None:
    visitor = desk.owned_by(desk.alice)
    cid = visitor["conversation_id"]
    for action, body in (("transfer", {"to": "bob"}), ("close", None), ("handback", None), ("take", None),
                         ("note", {"text": "not mine"})):
        status, answer = desk.bob.desk("POST", f"/{cid}/{action}", body)
        assert status in (403, 404), (action, status, answer)
    status, answer = desk.bob.desk("POST", f"/{cid}/reply", {"text": "not mine"})
    assert status in (403, 404, 409), answer  # 409: "take it first" (test_handoff.py)
    assert desk.bob.desk("GET", f"/{cid}")[0] in (403, 404)
    assert cid not in {c["id"] for c in desk.bob.inbox("open")}
    after = desk.alice.detail(cid)
    assert after["conversation"]["owner"] == "agent:alice" and after["conversation"]["status"] == "open", after
    assert [m["role"] for m in after["messages"]] == ["bot", "system"], after["messages"]

    # A supervisor sees every conversation and moves it.
    assert cid in {c["id"] for c in desk.sue.inbox("open")}
    status, moved = desk.sue.desk("POST", f"/{cid}/transfer", {"to": "bob"})
    assert status == 200 and moved["owner"] == "agent:bob", moved
    status, back = desk.sue.desk("POST", f"/{cid}/handback")
    assert status == 200 and back["owner"] == "bot", back
    status, closed = desk.sue.desk("POST", f"/{cid}/close")
    assert status == 200 and closed["status"] == "closed", closed

    # Taking a conversation someone else owns is a supervisor's move too.
    other = desk.owned_by(desk.bob)
    status, taken = desk.sue.desk("POST", f"/{other['conversation_id']}/take")
    assert status == 200 and taken["owner"] == "agent:sue", taken


def test_close_rate_and_reopen(desk: Desk) -> None:
    visitor = desk.owned_by(desk.alice)
    cid = visitor["conversation_id"]
    bearer = {"Authorization": f"Bearer {visitor['visitor_token']}"}
    status, body, _ = request(desk.server, "POST", f"/api/v1/conversations/{cid}/rating", {"score": 5}, headers=bearer)
    assert status == 409, body  # nothing to rate while it is open

    with watching(desk.server, visitor) as ws:
        status, closed = desk.alice.desk("POST", f"/{cid}/close")
        assert status == 200 and closed["status"] == "closed", closed
        notice = next_frame(ws, lambda f: f["type"] == "message", "resolved notice")["message"]
        assert notice["role"] == "system" and notice["text"] == EN["resolved"], notice
        frame = next_frame(ws, lambda f: f["type"] == "status" and f["status"] == "closed", "closed status")
        assert frame["rated"] is False, frame  # the page shows the rating form

        # A resolved conversation takes no more messages, by either way in.
        ws.send(json.dumps({"type": "message", "text": "one more thing", "conversation_id": cid,
                            "visitor_token": visitor["visitor_token"]}))
        error = next_frame(ws, lambda f: f["type"] in ("error", "reply"), "error frame")
        assert error["type"] == "error" and error["status"] == 409 and error["message"], error
        status, body, _ = request(desk.server, "POST", "/api/v1/chat", {
            "text": "hello?", "conversation_id": cid, "visitor_token": visitor["visitor_token"]})
        assert status == 409 and body["error"] == "conversation_resolved", body
        assert "new conversation" in body["message"], body
        assert request(desk.server, "POST", "/api/v1/conversations/handoff", {
            "conversation_id": cid, "visitor_token": visitor["visitor_token"]})[0] == 409

        for score in (0, 6, -1):
            status, body, _ = request(desk.server, "POST", f"/api/v1/conversations/{cid}/rating", {"score": score},
                                      headers=bearer)
            assert status == 400 and body["error"] == "invalid_input", (score, body)
        status, body, _ = request(desk.server, "POST", f"/api/v1/conversations/{cid}/rating",
                                  {"score": 4, "comment": "Quick and kind"}, headers=bearer)
        assert status == 200, body
        rated = next_frame(ws, lambda f: f["type"] == "status" and f["rated"], "rated status")
        assert rated["status"] == "closed", rated
    assert desk.alice.detail(cid)["rating"] == {"score": 4, "comment": "Quick and kind"}
    # Someone else's token cannot rate it.
    stranger = chat(desk.server, "hello")
    status, body, _ = request(desk.server, "POST", f"/api/v1/conversations/{cid}/rating", {"score": 1},
                              headers={"Authorization": f"Bearer {stranger['visitor_token']}"})
    assert status == 404, body
    assert cid in {c["id"] for c in desk.alice.inbox("resolved")}

    status, reopened = desk.alice.desk("POST", f"/{cid}/reopen")
    assert status == 200 and reopened["status"] == "open" and reopened["owner"] == "agent:alice", reopened
    assert cid not in {c["id"] for c in desk.alice.inbox("resolved")}
    again = chat(desk.server, "Thanks for reopening", visitor)
    assert again["reply"] is None and again["owner"] == "human", again  # Alice answers, not the bot


def test_notes_stay_with_the_agents(desk: Desk) -> None:
    visitor = desk.owned_by(desk.alice)
    cid = visitor["conversation_id"]
    note = "Private: customer was rude on the phone last week"
    with watching(desk.server, visitor) as ws:
        status, written = desk.alice.desk("POST", f"/{cid}/note", {"text": note})
        assert status == 200 and written["role"] == "note" and written["author"] == "alice", written
        assert desk.alice.desk("POST", f"/{cid}/reply", {"text": "How can I help?"})[0] == 200
        frames = [next_frame(ws, lambda f: f["type"] == "message" and f["message"]["role"] == "agent", "reply")]
        frames += drain(ws)
        assert note not in json.dumps(frames, ensure_ascii=False), frames
    history = visitor_messages(desk.server, visitor)
    assert note not in json.dumps(history, ensure_ascii=False) and "note" not in {m["role"] for m in history}
    with visitor_socket(desk.server) as ws:
        replayed, _ = resume(ws, visitor)
        assert note not in json.dumps(replayed, ensure_ascii=False), replayed
    seen = desk.alice.detail(cid)["messages"]
    assert [(m["role"], m["text"]) for m in seen if m["role"] in ("note", "agent")] == [
        ("note", note), ("agent", "How can I help?")]
    # A supervisor reads it too.
    assert note in [m["text"] for m in desk.sue.detail(cid)["messages"]]


def test_a_left_message_is_a_ticket_and_its_answer_reaches_the_visitor_in_their_language(desk: Desk) -> None:
    visitor = chat(desk.server, "我要转人工")
    assert visitor["reply"]["text"] == ZH["leave_message"], visitor  # nobody is online in this module
    cid = visitor["conversation_id"]
    with desk.alice.socket() as console, watching(desk.server, visitor) as ws:
        status, created, _ = request(desk.server, "POST", "/api/v1/tickets", {
            "name": "王小明", "contact": "xiaoming@example.com", "message": "我的银行卡被冻结了，请联系我。",
            "conversation_id": cid}, headers={"Authorization": f"Bearer {visitor['visitor_token']}"})
        assert status == 201 and created["ticket_id"] and created["visitor_token"], created
        ticket_id = created["ticket_id"]

        status, listing = desk.alice.call("GET", "/api/v1/desk/tickets?status=open")
        assert status == 200, listing
        found = {t["id"]: t for t in listing["tickets"]}[ticket_id]
        assert (found["name"], found["contact"], found["language"], found["conversation_id"], found["status"]) == (
            "王小明", "xiaoming@example.com", "zh", cid, "open"), found

        status, answered = desk.alice.call("POST", f"/api/v1/desk/tickets/{ticket_id}/answer",
                                           {"text": "已为您解冻，请重新登录。"})
        assert status == 200, answered
        assert (answered["status"], answered["answer"], answered["answered_by"]) == (
            "answered", "已为您解冻，请重新登录。", "alice"), answered
        pushed = next_frame(ws, lambda f: f["type"] == "message", "the answer on the visitor's socket")["message"]
        assert pushed["text"] == ZH["ticket_answered"].format(answer="已为您解冻，请重新登录。"), pushed
        next_frame(console, lambda f: f["type"] == "ticket" and f["ticket"]["id"] == ticket_id, "ticket frame")
    assert visitor_messages(desk.server, visitor)[-1]["text"] == pushed["text"]
    status, listing = desk.alice.call("GET", "/api/v1/desk/tickets?status=open")
    assert ticket_id not in {t["id"] for t in listing["tickets"]}
    status, listing = desk.alice.call("GET", "/api/v1/desk/tickets?status=answered")
    assert ticket_id in {t["id"] for t in listing["tickets"]}


def test_a_ticket_without_a_conversation_and_bad_tickets(desk: Desk) -> None:
    status, created, _ = request(desk.server, "POST", "/api/v1/tickets", {
        "name": "Jo", "contact": "+44 20 7946 0000", "message": "Please call me about my mortgage."})
    assert status == 201 and created["visitor_token"], created
    status, listing = desk.bob.call("GET", "/api/v1/desk/tickets")
    found = {t["id"]: t for t in listing["tickets"]}[created["ticket_id"]]
    assert (found["language"], found["conversation_id"]) == ("en", ""), found
    status, answered = desk.bob.call("POST", f"/api/v1/desk/tickets/{created['ticket_id']}/answer",
                                     {"text": "We called you back."})
    assert status == 200 and answered["status"] == "answered", answered

    for body in ({"name": "Jo", "contact": "", "message": "hi"}, {"name": "", "contact": "a@b.c", "message": "hi"},
                 {"name": "Jo", "contact": "a@b.c", "message": "   "}):
        status, answer, _ = request(desk.server, "POST", "/api/v1/tickets", body)
        assert status == 400 and answer["message"], (body, answer)
    # Someone else's conversation cannot be attached to a ticket.
    other = chat(desk.server, "hello")
    status, answer, _ = request(desk.server, "POST", "/api/v1/tickets", {
        "name": "Mallory", "contact": "m@example.com", "message": "hi", "conversation_id": other["conversation_id"]})
    assert status in (401, 404), answer
    assert request(desk.server, "POST", "/api/v1/desk/tickets/tkt_nothing/answer", {"text": "x"},
                   headers={"Authorization": "Bearer nope"})[0] == 401
    assert desk.bob.call("POST", "/api/v1/desk/tickets/tkt_nothing/answer", {"text": "x"})[0] == 404


def test_a_new_ticket_is_pushed_to_the_consoles(desk: Desk) -> None:
    """Contract: the console socket carries ``{"type": "ticket", "ticket": Ticket}`` frames, so a
    left message shows up at the desk without a reload."""
    with desk.bob.socket() as console:
        drain(console, 0.2)
        status, created, _ = request(desk.server, "POST", "/api/v1/tickets", {
            "name": "Ann", "contact": "ann@example.com", "message": "Call me back, please."})
        assert status == 201, created
        frame = next_frame(console, lambda f: f["type"] == "ticket" and f["ticket"]["id"] == created["ticket_id"],
                           "ticket frame for the new left message", timeout=3)
        assert frame["ticket"]["status"] == "open", frame


def test_canned_replies_are_set_by_an_admin_and_read_by_agents(desk: Desk) -> None:
    replies = {"replies": [{"shortcut": "hello", "text": "Hello! I'm looking into it now."},
                           {"shortcut": "bye", "text": "Thanks for contacting us."}]}
    status, body = desk.alice.call("PUT", "/api/v1/desk/canned", replies)
    assert status == 403 and body["error"] == "forbidden", body
    status, body = desk.sue.call("PUT", "/api/v1/desk/canned", replies)
    assert status == 403, body
    status, before = desk.alice.call("GET", "/api/v1/desk/canned")
    assert status == 200 and before != replies, before  # unchanged: what the node started with

    status, body = desk.admin.call("PUT", "/api/v1/desk/canned", replies)
    assert status == 200 and body == replies, body
    assert desk.alice.call("GET", "/api/v1/desk/canned") == (200, replies)
    duplicate = {"replies": [{"shortcut": "a", "text": "x"}, {"shortcut": "a", "text": "y"}]}
    status, body = desk.admin.call("PUT", "/api/v1/desk/canned", duplicate)
    assert status == 400, body
    assert desk.alice.call("GET", "/api/v1/desk/canned") == (200, replies)


def test_readyz_is_503_with_the_reason_while_the_models_are_not_loaded(tmp_path: Any) -> None:
    node = make_node(tmp_path / "node", **{'embedding_path = ""': 'embedding_path = "no-such-embedder.gguf"'})
    server = Server(node).start(wait_ready=False)
    try:
        def failed() -> Any:
            try:
                status, body, _ = request(server, "GET", "/readyz", timeout=2)
            except OSError:
                return None
            return (status, body) if "no-such-embedder.gguf" in json.dumps(body) else None

        status, body = wait_for(failed, "/readyz to report the missing model", timeout=60, every=0.2)
        assert status == 503 and body["ready"] is False, body
        status, health, _ = request(server, "GET", "/healthz")
        assert status == 200 and health["status"] == "ok", health
        status, refused, _ = request(server, "POST", "/api/v1/chat", {"text": "hello"})
        assert status == 503 and "no-such-embedder.gguf" in refused["message"], refused
        assert request(server, "GET", "/readyz")[0] == 503  # it stays so
    finally:
        server.stop()
