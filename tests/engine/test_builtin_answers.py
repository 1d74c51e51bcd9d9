"""The demo with no LLM configured: the standard built-in model (or, when its answer fails the
checks or the turn budget, the extractive quote) answers questions about the demo knowledge base
in the visitor's language, with the fact and the right document cited first; a question the
knowledge base does not answer gets "not in the knowledge base" in that language, never a guess.

The node is the demo's: the shipped config (``builtin_chat = "standard"``, a longer turn budget)
and ``demo_kb/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.core.language import detect
from appliance.core.phrases import phrase
from tests.conftest import ROOT, Node, Server, init_node
from tests.engine.harness import chat, new_token, trace

ANSWERED = {"local_model", "extractive", "knowledge_qa"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Node, str]]:
    node = init_node(tmp_path_factory.mktemp("demo") / "node")
    node.edit_config('builtin_chat = "small"', 'builtin_chat = "standard"')
    # What the model says is judged here, not how fast: on a loaded machine the shipped 8 s budget
    # would sometimes hand the turn to the extractive quote (bench/ and `eval answers` time it).
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 60.0")
    node.cli("kb", "add", "--quiet", str(ROOT / "demo_kb" / "en"), str(ROOT / "demo_kb" / "zh"))
    node.cli("user", "add", "ops", "--role", "admin")
    admin = new_token(node, "admin", "ops")
    server = Server(node).start()
    try:
        yield server, node, admin
    finally:
        server.stop()


@pytest.mark.parametrize(("question", "document", "fact"), [
    ("What is the limit for a contactless payment?", "cards.md", "100 USD"),
    ("How much is the fee for sending money abroad?", ("transfers.md", "fees.html"), "25 USD"),
    ("新办的卡多久能寄到？", "银行卡.md", "5到7个工作日"),
    ("跨境汇款的手续费是多少？", "转账汇款.md", "25美元"),
], ids=["en-contactless", "en-abroad", "zh-new-card", "zh-abroad"])
def test_the_demo_answers_from_its_knowledge_base_in_the_visitors_language(
        demo: tuple[Server, Node, str], question: str, document: str | tuple[str, ...], fact: str) -> None:
    server, _, admin = demo
    answer: dict[str, Any] = chat(server, question)
    reply = answer["reply"]
    assert reply["source"] in ANSWERED, answer
    assert fact.replace(" ", "") in reply["text"].replace(" ", ""), reply
    assert detect(reply["text"]) == detect(question), reply
    first = Path(reply["citations"][0]["document"]).name
    assert first in ((document,) if isinstance(document, str) else document), reply["citations"]
    recorded = trace(server, admin, answer["trace_id"])
    if reply["source"] == "local_model":
        assert recorded["template_id"] == "local-grounded", recorded
    else:  # the built-in model's answer was replaced: the trace says why
        assert reply["source"] == "knowledge_qa" or recorded["fallbacks"], recorded


@pytest.mark.parametrize("question", ["Do you sell car insurance?", "你们卖车险吗？"], ids=["en", "zh"])
def test_the_demo_says_so_when_its_knowledge_base_has_no_answer(demo: tuple[Server, Node, str], question: str) -> None:
    server, _, _ = demo
    reply = chat(server, question)["reply"]
    assert reply["source"] == "no_answer", reply
    assert reply["text"] == phrase("no_answer", detect(question))
