"""The engine's answer paths through a real server, in English and Chinese: a configured rule, an
HTTP tool the model asks for (and one it asks for with bad arguments), a knowledge-backed model
answer with its citations, a knowledge-base Q&A pair, "nothing in the knowledge base", and the
handoff after repeated low-confidence turns.

One node serves the whole module: a small knowledge base (a returns page and an orders page in
each language, a Q&A sheet), one rule, two HTTP tools backed by an order system started here on
127.0.0.1, and the mock OpenAI-compatible upstream (``bench.mock_upstream``) as the LLM. Every
test asks questions no other test asks, so the answer cache never carries one test into another.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from appliance.core.phrases import phrase
from tests.conftest import Node, Server, init_node
from tests.engine.harness import Upstream, call, chat, new_token, trace

RETURNS_EN = """# Returns

## Refund period

You can return any item within 30 days of delivery. Refunds reach your account within 5 business days
after the parcel arrives at our warehouse.
"""
RETURNS_ZH = """# 退货政策

## 退款期限

收货后 30 天内可以申请退货。仓库收到退货包裹后，退款会在 5 个工作日内退回您的账户。
"""
ORDERS_EN = """# Orders

## Order status

To find out where your order is, tell us your order number (it looks like A-1234). Orders ship from
our warehouse within two days.
"""
ORDERS_ZH = """# 订单

## 订单状态

想知道订单到哪里了，请告诉我们您的订单号（例如 A-1234）。订单会在两天内从仓库发出。
"""
FAQ = """question,answer
Can I change my delivery address?,"Yes, until the parcel leaves our warehouse: change it under My orders."
可以修改收货地址吗？,可以。在包裹离开仓库之前，您可以在“我的订单”中修改收货地址。
"""
ORDER_SYSTEM = {
    "A-1234": "Order A-1234 left the warehouse on Monday and arrives on Thursday.",
    "B-5678": "订单 B-5678 已于周一发货，预计周四送达。",
}

RULE = """
[[rules]]
name = "opening-hours"
keywords = ["opening hours", "营业时间"]
action = "answer"
answer = "Our branches are open 9:00-17:00, Monday to Friday."
answers = { zh = "营业时间为周一至周五 9:00-17:00。" }
"""
TOOLS = """
[[tools]]
name = "order_status"
description = "Look up the delivery status of an order by the customer's question"
url = "{url}/status"
[tools.parameters]
type = "object"
properties = {{ query = {{ type = "string", maxLength = 200 }} }}
required = ["query"]

[[tools]]
name = "cancel_order"
description = "Cancel an order by its number"
url = "{url}/cancel"
[tools.parameters]
type = "object"
properties = {{ order_id = {{ type = "string", pattern = "^[A-Z]-[0-9]{{4}}$" }} }}
required = ["order_id"]
additionalProperties = false
"""


class OrderSystem:
    """An internal order system on 127.0.0.1: answers POST /status with the order the question
    names, and records every call it receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        system = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                system.calls.append((self.path, body))
                number = re.search(r"[A-Z]-\d{4}", str(body))
                text = ORDER_SYSTEM.get(number.group(0) if number else "", "No such order.")
                payload = text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Desk:
    server: Server
    node: Node
    upstream: Upstream
    orders: OrderSystem
    admin: str

    def trace(self, answer: dict[str, Any]) -> dict[str, Any]:
        return trace(self.server, self.admin, answer["trace_id"])

    def blame(self, answer: dict[str, Any]) -> str:
        return self.node.cli("blame", answer["conversation_id"], "--width", "220").stdout

    def presence(self, status: str) -> None:
        code, body = call(self.server.url, "POST", "/api/v1/desk/presence", {"status": status}, token=self.admin)
        assert code == 200 and body["presence"] == status, body


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    directory = tmp_path_factory.mktemp("paths")
    node = init_node(directory / "node")
    docs = directory / "docs"
    docs.mkdir()
    for name, text in (("returns.md", RETURNS_EN), ("退货.md", RETURNS_ZH), ("orders.md", ORDERS_EN),
                       ("订单.md", ORDERS_ZH), ("faq.csv", FAQ)):
        (docs / name).write_text(text, encoding="utf-8")
    node.cli("kb", "add", "--quiet", str(docs))
    orders = OrderSystem()
    upstream = Upstream(directory, "llm")
    try:
        with node.config.open("a", encoding="utf-8") as config:
            config.write(RULE + TOOLS.format(url=orders.url))
        upstream.add_to(node)
        node.cli("model", "use", "llm")
        node.cli("user", "add", "ops", "--role", "admin")
        admin = new_token(node, "admin", "ops")
        server = Server(node).start()
        try:
            yield Desk(server, node, upstream, orders, admin)
        finally:
            server.stop()
    finally:
        upstream.stop()
        orders.close()


def decisions(blame: str) -> list[str]:
    """The decision column of `appliance blame`, one decision a line."""
    return [line.split("│", 1)[1].strip() for line in blame.splitlines() if "│" in line]


@pytest.mark.parametrize(("question", "expected"), [
    ("What are your opening hours on Friday?", "Our branches are open 9:00-17:00, Monday to Friday."),
    ("请问你们周五的营业时间是几点？", "营业时间为周一至周五 9:00-17:00。"),
], ids=["en", "zh"])
def test_a_configured_rule_answers_without_the_model(desk: Desk, question: str, expected: str) -> None:
    calls = desk.upstream.requests
    answer = chat(desk.server, question)
    assert answer["reply"]["source"] == "rule", answer
    assert answer["reply"]["text"] == expected
    assert desk.upstream.requests == calls  # no model was asked
    assert desk.trace(answer)["rules_fired"] == ["opening-hours"]
    path = decisions(desk.blame(answer))
    assert "rule opening-hours fired" in path, path
    assert path[-1].startswith("→ rule"), path


@pytest.mark.parametrize(("question", "order"), [
    ("Where is my order A-1234?", "A-1234"),
    ("我的订单 B-5678 到哪里了？", "B-5678"),
], ids=["en", "zh"])
def test_the_model_calls_an_http_tool_and_answers_from_its_result(desk: Desk, question: str, order: str) -> None:
    desk.upstream.set(mode="tool_call", tool_name="order_status", times=1)
    before = len(desk.orders.calls)
    answer = chat(desk.server, question)
    # The order system was asked once, with what the model put in the arguments (the mock model
    # passes on the customer's message as it was given it).
    [(path, arguments)] = desk.orders.calls[before:]
    assert path == "/status" and question in arguments["query"], arguments
    reply = answer["reply"]
    assert reply["source"] == "llm", answer
    assert reply["text"] == f"Mock answer from the tool: {ORDER_SYSTEM[order]}"

    recorded = desk.trace(answer)
    [tool_call] = recorded["tool_calls"]
    assert (tool_call["name"], tool_call["error"], tool_call["result"]) == ("order_status", "", ORDER_SYSTEM[order])
    assert json.loads(tool_call["arguments"]) == arguments
    assert [a["status"] for a in recorded["attempts"]] == ["ok", "ok"]  # asked for the tool, then answered
    assert any(line.startswith("tool order_status → ok") for line in decisions(desk.blame(answer)))


@pytest.mark.parametrize("question", [
    "Please cancel my order A-1234 now",
    "请取消我的订单 A-1234",
], ids=["en", "zh"])
def test_a_tool_call_with_arguments_outside_its_schema_is_refused_and_recorded(desk: Desk, question: str) -> None:
    desk.upstream.set(mode="tool_call", tool_name="cancel_order", times=1)
    before = len(desk.orders.calls)
    answer = chat(desk.server, question)
    assert desk.orders.calls[before:] == []  # the order system never saw the call
    reply = answer["reply"]
    assert reply["source"] == "llm", answer
    refusal = "refused: arguments do not match the schema of 'cancel_order': $: 'order_id' is required"
    assert reply["text"] == f"Mock answer from the tool: {refusal}"  # the model was told it was refused

    [tool_call] = desk.trace(answer)["tool_calls"]
    assert (tool_call["name"], tool_call["result"], tool_call["error"]) == ("cancel_order", "", refusal)
    assert f"✗ tool cancel_order {refusal} (never run)" in decisions(desk.blame(answer))


@pytest.mark.parametrize(("question", "document", "fact"), [
    ("How many days do I have to return an item for a refund?", "returns.md", "30 days"),
    ("收货后多少天内可以申请退货退款？", "退货.md", "30 天"),
], ids=["en", "zh"])
def test_a_knowledge_backed_model_answer_cites_the_document(
        desk: Desk, question: str, document: str, fact: str) -> None:
    answer = chat(desk.server, question)
    reply = answer["reply"]
    assert reply["source"] == "llm", answer
    assert reply["text"].startswith("Mock answer about:"), reply
    assert reply["citations"] and reply["citations"][0]["document"] == document, reply["citations"]

    recorded = desk.trace(answer)
    cited = {c["chunk_id"] for c in reply["citations"]}
    assert any(c["chunk_id"] in cited and fact in c["text"] for c in recorded["chunks"]), recorded["chunks"]
    assert recorded["route"] == "llm" and recorded["tool_calls"] == []


@pytest.mark.parametrize(("question", "expected"), [
    ("Can I change my delivery address?", "Yes, until the parcel leaves our warehouse: change it under My orders."),
    ("可以修改收货地址吗？", "可以。在包裹离开仓库之前，您可以在“我的订单”中修改收货地址。"),
], ids=["en", "zh"])
def test_a_knowledge_base_qa_pair_answers_directly(desk: Desk, question: str, expected: str) -> None:
    calls = desk.upstream.requests
    answer = chat(desk.server, question)
    reply = answer["reply"]
    assert reply["source"] == "knowledge_qa", answer
    assert reply["text"] == expected
    assert [c["document"] for c in reply["citations"]] == ["faq.csv"], reply
    assert desk.upstream.requests == calls


UNRELATED = {
    "en": ("What is the airspeed velocity of an unladen swallow?", "Which football team won the 1954 world cup?"),
    "zh": ("燕子每小时能飞多少公里？", "一九五四年世界杯的冠军是哪支球队？"),
}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_a_question_the_knowledge_base_knows_nothing_about_gets_no_answer(desk: Desk, language: str) -> None:
    calls = desk.upstream.requests
    answer = chat(desk.server, UNRELATED[language][0])
    assert answer["reply"]["source"] == "no_answer", answer
    assert answer["reply"]["text"] == phrase("no_answer", language)
    assert answer["reply"]["citations"] == [] and answer["owner"] == "bot"
    assert desk.upstream.requests == calls  # no model was asked to guess
    assert "nothing relevant in the knowledge base" in desk.trace(answer)["fallbacks"]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_two_unanswerable_questions_in_a_row_go_to_a_human(desk: Desk, language: str) -> None:
    first, second = UNRELATED[language]
    # Nobody at the desk: the visitor is asked to leave a message.
    offline = chat(desk.server, first + " (1)")
    assert offline["reply"]["source"] == "no_answer", offline
    left = chat(desk.server, second + " (1)", offline)
    assert left["reply"]["source"] == "leave_message", left
    assert left["reply"]["text"] == phrase("leave_message", language)
    assert left["owner"] == "human"

    # An agent online: the second miss in a row hands the conversation over.
    desk.presence("online")
    try:
        missed = chat(desk.server, first + " (2)")
        assert missed["reply"]["source"] == "no_answer", missed
        handed = chat(desk.server, second + " (2)", missed)
        assert handed["reply"]["source"] == "handoff", handed
        assert handed["reply"]["text"] == phrase("handoff", language)
        assert handed["owner"] == "human"
        assert desk.trace(handed)["handoff_reason"] == "low confidence 2 turns in a row"
        status, queue = call(desk.server.url, "GET", "/api/v1/desk/conversations?filter=queue", token=desk.admin)
        assert status == 200, queue
        waiting = {c["id"] for c in queue["conversations"]}
        assert {offline["conversation_id"], handed["conversation_id"]} <= waiting
    finally:
        desk.presence("offline")
