"""Every upstream down: visitors still get a useful reply and `blame` says what happened.

How fast those replies come with the breakers open is measured by the benchmark
(``python -m bench.latency``), not asserted here.
"""

from __future__ import annotations

import time
from pathlib import Path

from appliance.core.phrases import phrase
from tests.conftest import Node
from tests.engine.harness import chat, models, new_token, parallel, running, upstreams, wait_for

BURST = 24


def question(i: int) -> str:
    """Visitor ``i``'s question of their own, in English or Chinese by turns."""
    return f"访客 {i}：我的包裹 {i} 号在哪里？" if i % 2 else f"Visitor {i}: where is my parcel number {i}?"


def _breakers(server_models: dict[str, object]) -> dict[str, str]:
    return {m["model"]: m["breaker"] for m in server_models["metrics"]["models"]}  # type: ignore[index]


def test_blame_names_both_failed_providers_and_the_builtin_model(node: Node, tmp_path: Path) -> None:
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 60.0")  # the built-in model must get to answer
    with upstreams(tmp_path, "primary", "secondary") as (primary, secondary):
        primary.set(mode="error")
        secondary.set(mode="hang")
        primary.add_to(node, "--retries", "0")
        secondary.add_to(node, "--retries", "0", "--timeout", "1")
        node.cli("model", "use", "primary")
        node.cli("model", "fallback", "secondary")
        with running(node) as server:
            answer = chat(server, "Hello, can you tell me about your opening hours?")
        received = (primary.stats()["by_mode"], secondary.stats()["by_mode"])
    assert answer["reply"]["source"] == "local_model", answer
    assert received == ({"error": 1}, {"hang": 1}), received

    blame = node.cli("blame", answer["conversation_id"], "--width", "200").stdout
    assert answer["conversation_id"] in blame
    assert answer["trace_id"][3:11] in blame
    path = [line.split("│", 1)[1].strip() for line in blame.splitlines() if "│" in line]
    hops = [line for line in path if line[:1] in "✗✓-"]
    assert len(hops) == 3, blame
    assert hops[0].startswith("✗ primary [active] server_error"), blame
    assert hops[1].startswith("✗ secondary [fallback] timeout"), blame
    assert hops[2].startswith("✓ builtin [local] answered"), blame
    assert any("primary server_error" in line and "secondary timeout" in line for line in path), blame
    assert path[-1].startswith("→ local_model"), blame
    # The bot's words are on the left of the same blame, beside the decisions.
    assert answer["reply"]["text"].split()[0] in blame


def test_with_every_upstream_down_replies_stay_useful_once_breakers_open(
        node: Node, tmp_path: Path) -> None:
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 1.0")  # the built-in model's queue does not fit
    with upstreams(tmp_path, "primary", "secondary") as (primary, secondary):
        primary.set(mode="error")
        secondary.set(mode="hang")
        primary.add_to(node)
        secondary.add_to(node, "--timeout", "5")
        node.cli("model", "use", "primary")
        node.cli("model", "fallback", "secondary")
        with running(node) as server:
            admin = new_token(node, "admin", "ops")

            def both_open() -> bool:
                chat(server, f"warm-up {time.monotonic()}: is anyone there?")
                return set(_breakers(models(server, admin)).values()) == {"open"}

            wait_for(both_open, "both circuit breakers to open", timeout=40, every=0)
            before = (primary.requests, secondary.requests)

            results = parallel(lambda i: chat(server, question(i)), BURST, workers=4)
            after = (primary.requests, secondary.requests)
            breakers = _breakers(models(server, admin))

            # No knowledge base to quote, no time for the built-in model and nobody at the desk: every
            # visitor, in their own language, is offered the leave-a-message form and queued for a human.
            for i, answer in enumerate(results):
                language = "zh" if i % 2 else "en"
                assert answer["reply"]["source"] == "leave_message", answer
                assert answer["reply"]["text"] == phrase("leave_message", language), answer
                assert answer["owner"] == "human", answer
            # While the breakers are open only half-open probes may reach the upstreams.
            assert after[0] - before[0] <= 2 and after[1] - before[1] <= 2, (before, after)
            assert set(breakers.values()) <= {"open", "half_open"}, breakers

            # The primary recovers. Visitors keep coming; the first call it receives is the breaker's
            # probe, whose success closes the breaker and brings the LLM answers back.
            primary.set(mode="ok")
            waiting_since = primary.requests

            def recovered() -> dict[str, object] | None:
                answer = chat(server, f"Still down? {time.monotonic()}")
                return answer if answer["reply"]["source"] == "llm" else None

            wait_for(recovered, "the primary's breaker to probe and close", timeout=40, every=0.25)
            assert primary.requests == waiting_since + 1, "calls reached the primary while its breaker was open"
            assert _breakers(models(server, admin))["primary"] == "closed"
            assert chat(server, "Back to normal?")["reply"]["source"] == "llm"
