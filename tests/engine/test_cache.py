"""The answer cache: L1 in process, L2 in a real redis-server, L3 in the node's SQLite file.

A model switch or a knowledge-base edit must never serve the previous answer.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Node, Server
from tests.engine.harness import RedisServer, chat, new_token, running, trace, upstreams, wait_routing

QUESTION = "What are your opening hours?"


def _ask(server: Server, admin: str, text: str) -> tuple[dict[str, object], str]:
    answer = chat(server, text)
    assert answer["reply"]["source"] == "llm", answer
    return answer, trace(server, admin, answer["trace_id"])["cache"]


def test_l1_hit_model_switch_miss_and_l3_after_restart(node: Node, tmp_path: Path) -> None:
    with upstreams(tmp_path, "up1", "up2") as (up1, up2):
        up1.add_to(node)
        up2.add_to(node)
        node.cli("model", "use", "up1")
        admin = new_token(node, "admin", "ops")
        with running(node) as server:
            first, level = _ask(server, admin, QUESTION)
            assert level == "miss"
            again, level = _ask(server, admin, "  what are your OPENING hours  ")  # same question, new visitor
            assert level == "l1"
            assert again["reply"] == first["reply"]
            assert again["conversation_id"] != first["conversation_id"]
            assert (up1.requests, up2.requests) == (1, 0)

            node.cli("model", "use", "up2")
            wait_routing(server, admin, "model use up2", active="up2")
            switched, level = _ask(server, admin, QUESTION)
            assert level == "miss", "a model switch served the previous model's cached answer"
            assert (up1.requests, up2.requests) == (1, 1)
            assert _ask(server, admin, QUESTION)[1] == "l1"

        with running(node) as server:
            restarted, level = _ask(server, admin, QUESTION)
            assert level == "l3"
            assert restarted["reply"] == switched["reply"]
            assert (up1.requests, up2.requests) == (1, 1)


def test_l2_redis_serves_after_a_restart(node: Node, tmp_path: Path) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    try:
        node.edit_config('redis_url = ""', f'redis_url = "{redis_server.url}"')
        with upstreams(tmp_path, "up1") as (up1,):
            up1.add_to(node)
            node.cli("model", "use", "up1")
            admin = new_token(node, "admin", "ops")
            with running(node) as server:
                first, level = _ask(server, admin, QUESTION)
                assert level == "miss"
                assert redis_server.client().keys("*"), "nothing was written to redis"
                assert _ask(server, admin, QUESTION)[1] == "l1"
            with running(node) as server:
                again, level = _ask(server, admin, QUESTION)
                assert level == "l2"
                assert again["reply"] == first["reply"]
                assert up1.requests == 1

            # Redis gone: visitors still get answers (cached in L3, or from the model).
            redis_server.stop()
            with running(node) as server:
                answer, level = _ask(server, admin, QUESTION)
                assert level == "l3"
                assert answer["reply"] == first["reply"]
                level = _ask(server, admin, "Do you ship to Iceland?")[1]
                assert level == "miss"
                assert up1.requests == 2
    finally:
        redis_server.stop()


def test_an_outage_answer_is_not_served_from_cache_once_the_model_is_back(node: Node, tmp_path: Path) -> None:
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 60.0")  # the built-in model answers the outage
    with upstreams(tmp_path, "up1") as (up1,):
        up1.set(mode="error")
        up1.add_to(node, "--retries", "0")
        node.cli("model", "use", "up1")
        admin = new_token(node, "admin", "ops")
        with running(node) as server:
            during = chat(server, QUESTION)
            assert during["reply"]["source"] == "local_model", during
            up1.set(mode="ok")
            after = chat(server, QUESTION)
            assert after["reply"]["source"] == "llm", (
                f"the built-in model's outage answer was served from cache "
                f"({trace(server, admin, after['trace_id'])['cache']}) after the routed model recovered")


def test_a_knowledge_base_edit_invalidates_cached_answers(node: Node, tmp_path: Path) -> None:
    page = tmp_path / "docs" / "returns.md"
    page.parent.mkdir()
    page.write_text("# Returns\n\nYou can return any item within 30 days of delivery. "
                    "Refunds reach your account within 5 business days.\n")
    node.cli("kb", "add", "--quiet", str(page))
    question = "How many days do I have to return an item?"
    with upstreams(tmp_path, "up1") as (up1,):
        up1.add_to(node)
        node.cli("model", "use", "up1")
        admin = new_token(node, "admin", "ops")
        with running(node) as server:
            first = chat(server, question)
            grounded = trace(server, admin, first["trace_id"])
            assert grounded["cache"] == "miss"
            assert any("30 days" in chunk["text"] for chunk in grounded["chunks"]), grounded["chunks"]
            assert trace(server, admin, chat(server, question)["trace_id"])["cache"] == "l1"
            assert up1.requests == 1

            page.write_text(page.read_text().replace("30 days", "60 days"))
            node.cli("kb", "add", "--quiet", str(page))
            edited = trace(server, admin, chat(server, question)["trace_id"])
            assert edited["cache"] == "miss", "a knowledge-base edit served the answer cached before it"
            assert any("60 days" in chunk["text"] for chunk in edited["chunks"]), edited["chunks"]
            assert up1.requests == 2
