"""Per-model, per-arm numbers an operator watches: /metrics and the admin models JSON."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Node
from tests.engine.harness import call, chat, models, new_token, running, scrape, upstreams

UP1 = 'arm="active",model="up1"'


def test_model_metrics_count_turns_latency_and_thumbs_down(node: Node, tmp_path: Path) -> None:
    with upstreams(tmp_path, "up1") as (up1,):
        up1.add_to(node)
        node.cli("model", "use", "up1")
        admin = new_token(node, "admin", "ops")
        with running(node) as server:
            answers = [chat(server, f"Question {n}: how do I return item {n}?") for n in range(4)]
            answers.append(chat(server, "And do I need the receipt?", answers[0]))
            cached = chat(server, "Question 1: how do I return item 1?")  # an L1 hit never reaches the model
            assert cached["reply"] == answers[1]["reply"]
            assert all(a["reply"]["source"] == "llm" for a in answers)
            assert up1.requests == 5

            metrics = scrape(server)
            assert metrics[f"appliance_model_requests_total{{{UP1}}}"] == 5
            assert metrics[f"appliance_model_errors_total{{{UP1}}}"] == 0
            assert metrics[f"appliance_model_tokens_out_total{{{UP1}}}"] > 0
            p50 = metrics[f'appliance_model_latency_ms{{{UP1},quantile="0.5"}}']
            p99 = metrics[f'appliance_model_latency_ms{{{UP1},quantile="0.99"}}']
            assert 0 < p50 <= p99, (p50, p99)
            assert metrics[f"appliance_model_thumbs_down_total{{{UP1}}}"] == 0

            def rate(reply: dict[str, object], rating: str, token: object = None) -> tuple[int, object]:
                return call(server.url, "POST", f"/api/v1/messages/{reply['message_id']}/feedback",
                            {"rating": rating}, token=str(token or reply["visitor_token"]))

            assert rate(answers[2], "down") == (200, {"message_id": answers[2]["message_id"], "rating": "down"})
            assert rate(answers[3], "up")[0] == 200
            stranger = chat(server, "Can I change the PIN of my debit card?")
            assert rate(answers[1], "down", stranger["visitor_token"])[0] == 404
            assert rate(answers[1], "meh")[0] == 400
            assert call(server.url, "POST", f"/api/v1/messages/{answers[1]['message_id']}/feedback",
                        {"rating": "down"})[0] == 401

            metrics = scrape(server)
            assert metrics[f"appliance_model_thumbs_down_total{{{UP1}}}"] == 1
            assert metrics[f"appliance_model_thumbs_down_ratio{{{UP1}}}"] == 0.5
            arms = {(a["model"], a["arm"]): a for a in models(server, admin)["metrics"]["arms"]}
            arm = arms[("up1", "active")]
            assert (arm["requests"], arm["feedback"], arm["thumbs_down"]) == (6, 2, 1), arm
            assert arm["thumbs_down_rate"] == 0.5
            assert 0 < arm["latency_p50_ms"] <= arm["latency_p99_ms"]


def test_changing_or_repeating_a_rating_counts_once(node: Node, tmp_path: Path) -> None:
    """The visitor's latest rating of a reply is what counts: one visitor clicking thumbs-down five
    times, or changing their mind to thumbs-up, must not skew the model's thumbs-down rate."""
    with upstreams(tmp_path, "up1") as (up1,):
        up1.add_to(node)
        node.cli("model", "use", "up1")
        admin = new_token(node, "admin", "ops")
        with running(node) as server:
            first, second = chat(server, "Where is my order?"), chat(server, "Can I cancel it?")

            def rate(reply: dict[str, object], rating: str) -> None:
                status, body = call(server.url, "POST", f"/api/v1/messages/{reply['message_id']}/feedback",
                                    {"rating": rating}, token=str(reply["visitor_token"]))
                assert status == 200, body

            for _ in range(5):
                rate(first, "down")
            rate(second, "down")
            rate(second, "up")  # changed their mind

            assert scrape(server)[f"appliance_model_thumbs_down_total{{{UP1}}}"] == 1
            arm = next(a for a in models(server, admin)["metrics"]["arms"] if a["model"] == "up1")
            assert (arm["feedback"], arm["thumbs_down"], arm["thumbs_down_rate"]) == (2, 1, 0.5), arm


def test_the_builtin_chat_model_loads_at_start_only_when_no_llm_is_active(node: Node, tmp_path: Path) -> None:
    # No LLM: the built-in model answers every turn, so it is loaded before the node is ready.
    with running(node) as server:
        assert scrape(server)["appliance_builtin_chat_loaded"] == 1
    # An active LLM: the built-in model stays out of memory until a turn needs it.
    with upstreams(tmp_path, "up1") as (up1,):
        up1.add_to(node)
        node.cli("model", "use", "up1")
        with running(node) as server:
            assert chat(server, "How do I return an item?")["reply"]["source"] == "llm"
            assert scrape(server)["appliance_builtin_chat_loaded"] == 0
