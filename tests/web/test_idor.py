"""Nothing leaks or moves across visitors or agents through an id in a path, a body or a frame.

For every id-bearing route (conversation, message, attachment, ticket, trace, account name):
visitor A with their own valid token gets exactly what a stranger gets for B's conversation,
messages, images, rating and thumbs (404, nothing of B's in the body); agent X cannot reply,
transfer, hand back or close agent Y's conversation (403 with a reason) while a supervisor and an
admin can; a transfer to an account that does not exist or is disabled is refused naming it; and
over ``/ws/visitor`` another visitor's conversation id gets an error frame, never its history or
its live messages. One visitor writes English, the other Chinese, and both directions are tried.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from appliance.core.phrases import PHRASES
from tests.conftest import Node, Server
from tests.desk.helpers import (
    Console,
    add_users,
    chat,
    drain,
    events,
    handoff,
    make_node,
    next_frame,
    request,
    resume,
    starting,
    upload_image,
    user_cli,
    visitor_messages,
    visitor_socket,
)

SECRETS = {"en": "My account number is 6222-0000-1111, keep it private",
           "zh": "我的账号是 6222-0000-2222，请保密"}
GREETING = {"en": "hello", "zh": "你好"}


class Visitor(NamedTuple):
    """A visitor with one of everything an id can point at."""

    language: str
    token: str
    conversation: str  # bot-answered, then in the queue, holding ``secret``
    bot_message: str
    trace: str
    attachment: str
    resolved: str  # a second conversation, resolved: the one they may rate
    secret: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def session(self) -> dict[str, Any]:
        return {"conversation_id": self.conversation, "visitor_token": self.token}


class Desk:
    def __init__(self, node: Node, server: Server, passwords: dict[str, str]) -> None:
        self.node, self.server = node, server
        self.admin = Console(server, "admin", node.admin_password)
        self.alice, self.bob, self.sue = (Console(server, n, passwords[n]) for n in ("alice", "bob", "sue"))
        for console in (self.admin, self.alice, self.bob, self.sue):  # nothing gets assigned behind our back
            assert console.call("POST", "/api/v1/desk/presence", {"status": "offline"})[0] == 200
        self.visitors = {"en": self.visitor("en", (20, 120, 220)), "zh": self.visitor("zh", (220, 120, 20))}

    def visitor(self, language: str, rgb: tuple[int, int, int]) -> Visitor:
        first = chat(self.server, GREETING[language])
        assert first["reply"] and first["trace_id"], first
        attachment = upload_image(self.server, first, rgb)
        handoff(self.server, first, language)
        held = chat(self.server, SECRETS[language], first)  # waits for a person: no bot turn
        assert held["owner"] == "human", held
        status, second, _ = request(self.server, "POST", "/api/v1/conversations/handoff",
                                    {"visitor_token": first["visitor_token"], "language": language})
        assert status == 200, second
        resolved = second["conversation_id"]
        assert self.admin.desk("POST", f"/{resolved}/take")[0] == 200
        assert self.admin.desk("POST", f"/{resolved}/close")[0] == 200
        return Visitor(language, first["visitor_token"], first["conversation_id"], first["message_id"],
                       first["trace_id"], attachment, resolved, SECRETS[language])

    def owned_by(self, console: Console, language: str, *, photo: tuple[int, int, int] | None = None
                 ) -> dict[str, Any]:
        """A new visitor, writing in ``language``, whose conversation ``console`` took over; with
        ``photo`` they were answered by the bot first (a trace) and sent that image."""
        if photo is None:
            visitor = handoff(self.server, language=language)
        else:
            visitor = chat(self.server, GREETING[language])
            attachment = upload_image(self.server, visitor, photo)
            sent = chat(self.server, "", visitor, attachments=[attachment])
            assert sent["owner"] == "human", sent  # no vision model: the image goes to a person
            visitor |= {"attachment_id": attachment}
        status, taken = console.desk("POST", f"/{visitor['conversation_id']}/take")
        assert status == 200 and taken["owner"] == f"agent:{console.name}", taken
        chat(self.server, SECRETS[language], visitor)
        return visitor


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    node = make_node(tmp_path_factory.mktemp("idor") / "node", **{"offline_grace_s = 15": "offline_grace_s = 0"})
    with starting(node) as server:
        passwords = add_users(node, {"alice": "agent", "bob": "agent", "sue": "supervisor", "dan": "agent"})
        assert user_cli(node, "disable", "dan").returncode == 0
        server.wait_ready()
        yield Desk(node, server, passwords)


def assert_refused(status: int, body: Any, expected: tuple[int, ...], *leaks: str) -> None:
    assert status in expected, (status, body)
    assert isinstance(body, dict) and set(body) == {"status", "error", "message"} and body["message"], body
    text = json.dumps(body, ensure_ascii=False)
    for leak in leaks:
        assert leak not in text, (leak, body)


PAIRS = [("en", "zh"), ("zh", "en")]


@pytest.mark.parametrize(("attacker", "victim"), PAIRS, ids=["en-reads-zh", "zh-reads-en"])
def test_a_visitor_cannot_reach_another_visitors_conversation_messages_images_or_ratings(
        desk: Desk, attacker: str, victim: str) -> None:
    a, b = desk.visitors[attacker], desk.visitors[victim]
    before = visitor_messages(desk.server, {"conversation_id": b.conversation, "visitor_token": b.token})
    forged = a.token[:-2] + ("AA" if not a.token.endswith("AA") else "BB")
    ticket = {"name": "Mallory", "contact": "m@example.com", "message": "about that conversation"}
    attempts: list[tuple[str, str, dict[str, Any] | None, str]] = [
        ("GET", f"/api/v1/conversations/{b.conversation}/messages", None, "header"),
        ("POST", "/api/v1/chat", {"text": "let me in", "conversation_id": b.conversation}, "body"),
        ("POST", "/api/v1/chat", {"text": "whose photo?", "attachments": [b.attachment]}, "body"),
        ("POST", "/api/v1/conversations/handoff", {"conversation_id": b.conversation}, "body"),
        ("POST", "/api/v1/tickets", {**ticket, "conversation_id": b.conversation}, "body"),
        ("POST", f"/api/v1/conversations/{b.resolved}/rating", {"score": 1, "comment": "差"}, "header"),
        ("GET", f"/api/v1/attachments/{b.attachment}", None, "header"),
        ("POST", f"/api/v1/messages/{b.bot_message}/feedback", {"rating": "down"}, "header"),
    ]
    for method, path, body, carried in attempts:
        # With A's own, valid token: exactly like a conversation that does not exist.
        if carried == "body":
            sent, headers = {**(body or {}), "visitor_token": a.token}, {}
        else:
            sent, headers = body, a.auth
        status, answer, _ = request(desk.server, method, path, sent, headers=headers)
        assert_refused(status, answer, (404,), b.secret, b.token)
        # With no token (a new visitor, where the route allows one) or a forged one: refused too.
        for token in (None, forged):
            if carried == "body":
                sent, headers = {**(body or {}), **({"visitor_token": token} if token else {})}, {}
            else:
                sent, headers = body, ({"Authorization": f"Bearer {token}"} if token else {})
            status, answer, _ = request(desk.server, method, path, sent, headers=headers)
            assert_refused(status, answer, (401, 404), b.secret, b.token)

    # B's conversation is as it was: no message, no owner change, no rating, no thumbs, no ticket.
    after = visitor_messages(desk.server, {"conversation_id": b.conversation, "visitor_token": b.token})
    assert after == before
    assert desk.admin.detail(b.conversation)["conversation"]["owner"] == "queue"
    assert desk.admin.detail(b.resolved)["rating"] is None
    assert b.bot_message not in {e["message_id"] for e in events(desk.node, "feedback.given")}
    assert b.conversation not in {e["conversation_id"] for e in events(desk.node, "ticket.created")}

    # B still does all of it.
    status, image, headers = request(desk.server, "GET", f"/api/v1/attachments/{b.attachment}", headers=b.auth)
    assert status == 200 and headers["Content-Type"].startswith("image/png"), (status, image)
    status, body, _ = request(desk.server, "POST", f"/api/v1/messages/{b.bot_message}/feedback", {"rating": "up"},
                              headers=b.auth)
    assert status == 200, body
    status, body, _ = request(desk.server, "POST", f"/api/v1/conversations/{b.resolved}/rating",
                              {"score": 5, "comment": "very helpful / 很有帮助"}, headers=b.auth)
    assert status == 200, body
    assert desk.admin.detail(b.resolved)["rating"]["score"] == 5


@pytest.mark.parametrize(("attacker", "victim"), PAIRS, ids=["en-reads-zh", "zh-reads-en"])
def test_the_visitor_socket_answers_another_visitors_conversation_with_an_error_not_its_history(
        desk: Desk, attacker: str, victim: str) -> None:
    a, b = desk.visitors[attacker], desk.visitors[victim]
    # B's conversation needs a person by now; whoever owns it, an admin takes it to reply below.
    assert desk.admin.desk("POST", f"/{b.conversation}/take")[0] == 200
    with visitor_socket(desk.server) as mine, visitor_socket(desk.server) as theirs:
        resume(theirs, b.session)
        drain(theirs)
        frames: list[dict[str, Any]] = [
            {"type": "resume", "conversation_id": b.conversation, "visitor_token": a.token},
            {"type": "typing", "conversation_id": b.conversation, "visitor_token": a.token, "typing": True},
            {"type": "handoff", "conversation_id": b.conversation, "visitor_token": a.token},
            {"type": "message", "text": "let me in", "conversation_id": b.conversation, "visitor_token": a.token},
            {"type": "message", "text": "whose photo?", "attachments": [b.attachment], "visitor_token": a.token},
        ]
        for frame in frames:
            mine.send(json.dumps(frame, ensure_ascii=False))
            error = next_frame(mine, lambda f: f["type"] in ("error", "history", "reply", "status"), frame["type"])
            assert error["type"] == "error" and error["status"] == 404 and error["message"], (frame, error)
        mine.send(json.dumps({"type": "resume", "conversation_id": b.conversation, "visitor_token": "forged"}))
        error = next_frame(mine, lambda f: f["type"] in ("error", "history"), "forged resume")
        assert error["type"] == "error" and error["status"] == 401, error

        # Live: what the agent writes to B reaches B's socket and nobody else's.
        answer = f"Agent to {victim}: 请核对您的账号 / please check your account"
        assert desk.admin.desk("POST", f"/{b.conversation}/reply", {"text": answer})[0] == 200
        pushed = next_frame(theirs, lambda f: f["type"] == "message" and f["message"]["role"] == "agent", "reply")
        assert pushed["message"]["text"] == answer
        leaked = json.dumps(drain(mine, 0.5), ensure_ascii=False)
        for secret in (answer, b.secret, b.conversation):
            assert secret not in leaked, leaked
    desk.admin.desk("POST", f"/{b.conversation}/transfer", {"to": "queue"})


LANGUAGES = ["en", "zh"]


def agent_refusal(status: int, body: Any, owner: str) -> str:
    """'' for a 403 that says why (the conversation is ``owner``'s; who may do it); else the answer."""
    message = str(body.get("message", "")).lower() if isinstance(body, dict) else ""
    if status == 403 and body["error"] == "forbidden" and any(w in message for w in (owner, "owner", "supervisor")):
        return ""
    return f"{status} {body}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_agent_cannot_reply_transfer_hand_back_or_close_another_agents_conversation(
        desk: Desk, language: str) -> None:
    visitor = desk.owned_by(desk.alice, language)
    cid = visitor["conversation_id"]
    before = desk.alice.detail(cid)
    wrong = []
    for action, body in (("reply", {"text": "Bob here, let me help"}), ("transfer", {"to": "bob"}),
                         ("transfer", {"to": "queue"}), ("handback", None), ("close", None)):
        status, answer = desk.bob.desk("POST", f"/{cid}/{action}", body)
        if problem := agent_refusal(status, answer, "alice"):
            wrong.append(f"{action} {body}: {problem}")
        assert SECRETS[language] not in json.dumps(answer, ensure_ascii=False)
    assert not wrong, "an agent acting on another agent's conversation must get 403 with a reason:\n" + "\n".join(
        wrong)
    # Nor take it, look into it or write in it: refused, and nothing of it in the answer.
    for method, path, body in (("POST", "/take", None), ("GET", "", None), ("POST", "/note", {"text": "mine now"})):
        status, answer = desk.bob.desk(method, f"/{cid}{path}", body)
        assert_refused(status, answer, (403, 404), SECRETS[language])
    after = desk.alice.detail(cid)
    assert after["conversation"]["owner"] == "agent:alice" and after["conversation"]["status"] == "open", after
    assert after["messages"] == before["messages"]
    texts = [m["text"] for m in visitor_messages(desk.server, visitor)]
    assert "Bob here, let me help" not in texts and PHRASES[language]["agent_joined"].format(agent="alice") in texts

    # A resolved conversation of Alice's is not Bob's to reopen either.
    assert desk.alice.desk("POST", f"/{cid}/close")[0] == 200
    status, answer = desk.bob.desk("POST", f"/{cid}/reopen")
    assert_refused(status, answer, (403, 404), SECRETS[language])
    assert desk.alice.detail(cid)["conversation"]["status"] == "closed"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("boss", ["sue", "admin"])
def test_a_supervisor_and_an_admin_act_on_any_agents_conversation(desk: Desk, boss: str, language: str) -> None:
    chief = desk.sue if boss == "sue" else desk.admin
    said = PHRASES[language]

    moved = desk.owned_by(desk.alice, language)
    status, body = chief.desk("POST", f"/{moved['conversation_id']}/transfer", {"to": "bob"})
    assert status == 200 and body["owner"] == "agent:bob", body
    assert said["transferred"].format(agent="bob") in [m["text"] for m in visitor_messages(desk.server, moved)]
    assert desk.bob.desk("POST", f"/{moved['conversation_id']}/reply", {"text": "Bob, taking over"})[0] == 200

    back = desk.owned_by(desk.alice, language)
    status, body = chief.desk("POST", f"/{back['conversation_id']}/handback")
    assert status == 200 and body["owner"] == "bot", body

    closed = desk.owned_by(desk.alice, language)
    status, body = chief.desk("POST", f"/{closed['conversation_id']}/close")
    assert status == 200 and body["status"] == "closed", body
    assert said["resolved"] in [m["text"] for m in visitor_messages(desk.server, closed)]

    replied = desk.owned_by(desk.alice, language)
    status, body = chief.desk("POST", f"/{replied['conversation_id']}/take")
    assert status == 200 and body["owner"] == f"agent:{chief.name}", body
    status, body = chief.desk("POST", f"/{replied['conversation_id']}/reply", {"text": "您好 / hello, supervisor here"})
    assert status == 200 and body["author"] == chief.name, body


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_transfer_to_a_missing_or_disabled_account_is_refused_naming_it(desk: Desk, language: str) -> None:
    visitor = desk.owned_by(desk.alice, language)
    cid = visitor["conversation_id"]
    before = visitor_messages(desk.server, visitor)
    for console in (desk.alice, desk.sue, desk.admin):
        for target, named in (("nobody-here", "nobody-here"), ("dan", "dan"), ("不存在的客服", "不存在的客服"),
                              ("agent:ghost", "ghost")):
            status, body = console.desk("POST", f"/{cid}/transfer", {"to": target})
            assert 400 <= status < 500 and status not in (401, 403), (console.name, target, status, body)
            assert named in body["message"], (console.name, target, body)
    assert desk.alice.detail(cid)["conversation"]["owner"] == "agent:alice"
    assert visitor_messages(desk.server, visitor) == before  # no "passed to ..." notice


@pytest.mark.parametrize("language", LANGUAGES)
def test_an_agent_cannot_read_the_traces_or_images_of_another_agents_conversation(desk: Desk, language: str) -> None:
    visitor = desk.owned_by(desk.alice, language, photo=(90, 30 + LANGUAGES.index(language) * 100, 160))
    trace = f"/api/v1/admin/traces/{visitor['trace_id']}"
    image = f"/api/v1/desk/attachments/{visitor['attachment_id']}"
    leaked = []
    for path in (trace, image):
        for console in (desk.alice, desk.sue, desk.admin):
            status, body = console.call("GET", path)
            assert status == 200, (console.name, path, status, body)
        # A visitor's token is no desk credential, not even the visitor's own.
        status, body, _ = request(desk.server, "GET", path,
                                  headers={"Authorization": f"Bearer {visitor['visitor_token']}"})
        assert_refused(status, body, (401,))
        status, body = desk.bob.call("GET", path)
        if status not in (403, 404):
            leaked.append(f"GET {path} as bob: {status} {str(body)[:160]}")
        else:
            assert_refused(status, body, (403, 404), GREETING[language], visitor["conversation_id"])
    assert not leaked, "Bob may not see Alice's conversation, so not its traces or images either:\n" + "\n".join(
        leaked)


def test_ticket_ids_are_checked(desk: Desk) -> None:
    status, body, _ = request(desk.server, "POST", "/api/v1/tickets", {
        "name": "李雷", "contact": "li@example.com", "message": "请回电话", "language": "zh"})
    assert status == 201, body
    ticket, token = body["ticket_id"], body["visitor_token"]
    status, answer = desk.bob.call("POST", "/api/v1/desk/tickets/tkt_no_such_ticket/answer", {"text": "hi"})
    assert_refused(status, answer, (404,))
    status, answer, _ = request(desk.server, "POST", f"/api/v1/desk/tickets/{ticket}/answer", {"text": "自己回答"},
                                headers={"Authorization": f"Bearer {token}"})
    assert_refused(status, answer, (401,))
    status, answer = desk.bob.call("POST", f"/api/v1/desk/tickets/{ticket}/answer", {"text": "我们会尽快回电。"})
    assert status == 200 and answer["status"] == "answered", answer


def test_the_console_socket_carries_only_what_its_agent_may_see(desk: Desk) -> None:
    visitor = desk.owned_by(desk.alice, "zh")
    cid = visitor["conversation_id"]
    words = "第二条消息：请尽快处理"
    with desk.alice.socket() as alice_ws, desk.bob.socket() as bob_ws, visitor_socket(desk.server) as ws:
        resume(ws, visitor)
        drain(ws)
        drain(bob_ws)
        # Bob types "in" Alice's conversation: the visitor sees no one typing.
        bob_ws.send(json.dumps({"type": "typing", "conversation_id": cid, "typing": True}))
        assert not [f for f in drain(ws, 0.5) if f["type"] == "typing"]

        # The visitor writes, then types: Alice's console shows both; Bob's learns nothing of it.
        chat(desk.server, words, visitor)
        pushed = next_frame(alice_ws, lambda f: f["type"] == "message" and f["message"]["text"] == words, "message")
        assert pushed["conversation_id"] == cid
        ws.send(json.dumps({"type": "typing", "conversation_id": cid, "visitor_token": visitor["visitor_token"],
                            "typing": True}))
        typing = next_frame(alice_ws, lambda f: f["type"] == "typing", "visitor typing")
        assert typing["conversation_id"] == cid and typing["who"] == "visitor", typing
        seen_by_bob = drain(bob_ws, 0.5)
        assert words not in json.dumps(seen_by_bob, ensure_ascii=False), seen_by_bob
        assert not [f for f in seen_by_bob if f.get("conversation_id") == cid], (
            f"Bob's console got frames of Alice's conversation: {seen_by_bob}")
