"""The intents admin API on a real server: the intents with their examples and the rules, a
sentence tried, examples added (English and Chinese, and to a new intent) and removed, live for
the next visitor at once, and every bad input answered with a 4xx naming what was wrong."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Node, Server
from tests.desk.helpers import Console, chat, make_node, starting
from tests.engine.harness import Upstream

RULE = """
[[rules]]
name = "opening-hours"
keywords = ["opening hours", "营业时间"]
action = "answer"
answer = "Our branches are open 9:00-17:00, Monday to Friday."
"""
COMPLAINT = "I would like to file a complaint with your manager"  # no example says this


class Admin:
    def __init__(self, node: Node, server: Server) -> None:
        self.console = Console(server, "admin", node.admin_password)
        self.server = server

    def intents(self) -> dict[str, Any]:
        status, body = self.console.call("GET", "/api/v1/admin/intents")
        assert status == 200, body
        return dict(body)

    def intent(self, name: str) -> dict[str, Any]:
        return next(i for i in self.intents()["intents"] if i["name"] == name)

    def try_text(self, text: str) -> dict[str, Any]:
        status, body = self.console.call("POST", "/api/v1/admin/intents/try", {"text": text})
        assert status == 200, body
        return dict(body)

    def add(self, intent: str, text: str) -> tuple[int, Any]:
        return self.console.call("POST", f"/api/v1/admin/intents/{intent}/examples", {"text": text})


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    root = tmp_path_factory.mktemp("intents-api")
    node = make_node(root / "node")
    node.config.write_text(node.config.read_text() + RULE)
    up = Upstream(root, "up1")  # the bot's answers: fast and deterministic
    try:
        up.add_to(node)
        node.cli("model", "use", "up1")
        with starting(node) as server:
            server.wait_ready()
            yield Admin(node, server)
    finally:
        up.stop()


def test_the_intents_and_the_rules_of_the_config(admin: Admin) -> None:
    body = admin.intents()
    human = next(i for i in body["intents"] if i["name"] == "human")
    assert (human["action"], human["origin"], human["counts"]["config"]) == ("handoff", "config", 12), human
    assert {"text": "转人工", "origin": "config"}.items() <= next(
        e for e in human["examples"] if e["text"] == "转人工").items()
    assert body["rules"] == [{"name": "opening-hours", "keywords": ["opening hours", "营业时间"], "regex": "",
                              "intent": "", "action": "answer", "stage": "always"}]
    assert body["training"]["examples"] == 24 and body["training"]["intents"] == 2, body["training"]

    tried = admin.try_text("what are your opening hours?")
    assert tried["rule"]["name"] == "opening-hours" and tried["stage"] == "rule", tried
    tried = admin.try_text("请帮我转人工服务")
    assert (tried["intent"], tried["in_scope"], tried["action"], tried["stage"]) == (
        "human", True, "handoff", "intent"), tried
    assert tried["top"][0] == {"intent": "human", "confidence": tried["confidence"]}, tried
    assert [t["intent"] for t in tried["top"]] == ["human", "greeting"], tried


def test_an_added_example_is_live_for_the_next_visitor_and_removing_it_undoes_that(admin: Admin) -> None:
    before = admin.try_text(COMPLAINT)
    assert (before["intent"], before["in_scope"]) == ("human", False), before  # nearly, not enough
    assert chat(admin.server, "can I complain to the manager")["reply"]["source"] == "llm"  # answered, cached

    status, added = admin.add("human", "I want to complain to your manager")
    assert status == 201, added
    assert added["example"]["origin"] == "console" and added["applied_s"] > 0, added
    status, zh = admin.add("human", "我要投诉你们经理")
    assert status == 201, zh
    assert admin.intent("human")["counts"] == {"config": 12, "console": 2, "total": 14}

    after = admin.try_text(COMPLAINT)
    assert (after["intent"], after["in_scope"], after["stage"]) == ("human", True, "intent"), after
    assert admin.try_text("我想投诉经理")["in_scope"] is True
    turn = chat(admin.server, "can I complain to the manager")  # the same words: not the cached answer
    # Handed towards a person: with nobody at the desk, the leave-a-message form.
    assert turn["reply"]["source"] == "leave_message", turn
    status, trace = admin.console.call("GET", f"/api/v1/admin/traces/{turn['trace_id']}")
    assert status == 200 and trace["intent"] == "human", trace

    for example in [e for e in admin.intent("human")["examples"] if e["origin"] == "console"]:
        status, removed = admin.console.call("DELETE", f"/api/v1/admin/intents/human/examples/{example['id']}")
        assert status == 200 and removed["example"]["text"] == example["text"], removed
    assert admin.try_text(COMPLAINT)["in_scope"] is False
    assert admin.intent("human")["counts"]["console"] == 0


def test_an_example_for_a_new_intent_makes_an_intent_that_routes_nothing(admin: Admin) -> None:
    status, body = admin.add("branch_hours", "when does the branch open on saturday")
    assert status == 201, body
    made = admin.intent("branch_hours")
    assert (made["action"], made["origin"], made["counts"]["total"]) == ("none", "console", 1), made
    tried = admin.try_text("what time does the branch open on saturdays")
    assert (tried["intent"], tried["action"]) == ("branch_hours", "none"), tried
    example = made["examples"][0]["id"]
    assert admin.console.call("DELETE", f"/api/v1/admin/intents/branch_hours/examples/{example}")[0] == 200
    assert all(i["name"] != "branch_hours" for i in admin.intents()["intents"])


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), [
    ("POST", "/api/v1/admin/intents/try", {"text": "  "}, 400, "text: must not be empty"),
    ("POST", "/api/v1/admin/intents/try", {"text": "x" * 4001}, 400, "text: at most 4000 characters"),
    ("POST", "/api/v1/admin/intents/try", {}, 400, "text"),
    ("POST", "/api/v1/admin/intents/human/examples", {"text": ""}, 400, "text: must not be empty"),
    ("POST", "/api/v1/admin/intents/human/examples", {"text": "y" * 501}, 400, "text: at most 500 characters"),
    ("POST", "/api/v1/admin/intents/human/examples", {"text": "转人工"}, 409, "already an example of this intent"),
    ("POST", "/api/v1/admin/intents/greeting/examples", {"text": "agent please"}, 409, "intent 'human'"),
    ("POST", "/api/v1/admin/intents/bad%20name!/examples", {"text": "hi"}, 400, "intent: 'bad name!'"),
    ("DELETE", "/api/v1/admin/intents/nope/examples/0123", None, 404, "intent: no intent named 'nope'"),
    ("DELETE", "/api/v1/admin/intents/human/examples/0123", None, 404, "example: intent 'human' has no example"),
])
def test_bad_input_is_refused_naming_the_field(admin: Admin, method: str, path: str, body: dict[str, Any] | None,
                                               status: int, says: str) -> None:
    got, answer = admin.console.call(method, path, body)
    assert got == status and says in answer["message"], answer
