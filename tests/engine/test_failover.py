"""Every upstream down: visitors still get a useful reply, fast, and `blame` says what happened."""

from __future__ import annotations

import math
import time
from pathlib import Path

from tests.conftest import Node
from tests.engine.harness import chat, models, new_token, parallel, running, upstreams, wait_for

USEFUL = {"local_model", "extractive", "rule", "handoff", "leave_message"}
BURST = 100


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


def test_with_every_upstream_down_replies_stay_useful_and_fast_once_breakers_open(
        node: Node, tmp_path: Path) -> None:
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 1.0")
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

            def timed(i: int) -> tuple[float, dict[str, object]]:
                started = time.perf_counter()
                answer = chat(server, f"Visitor {i}: where is my parcel number {i}?")
                return time.perf_counter() - started, answer

            results = parallel(timed, BURST, workers=4)
            after = (primary.requests, secondary.requests)
            breakers = _breakers(models(server, admin))

            sources = {answer["reply"]["source"] for _, answer in results}  # type: ignore[index]
            assert sources <= USEFUL, sources
            assert all(answer["reply"]["text"] for _, answer in results)  # type: ignore[index]
            times = sorted(elapsed for elapsed, _ in results)
            p99 = times[math.ceil(0.99 * len(times)) - 1]
            assert p99 < 1.0, f"p99 {p99:.3f}s (median {times[len(times) // 2]:.3f}s, max {times[-1]:.3f}s)"
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
