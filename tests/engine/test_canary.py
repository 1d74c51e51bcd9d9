"""A 20 % canary over 2,000 real conversations, and promote/rollback while visitors keep chatting."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from tests.conftest import Node, Server
from tests.engine.harness import (
    Upstream,
    call,
    chat,
    new_token,
    parallel,
    running,
    scrape,
    trace,
    upstreams,
    wait_for,
    wait_routing,
)

CONVERSATIONS = 2000
WORKERS = 12


def _canary_setup(node: Node, server: Server, stable: Upstream, candidate: Upstream) -> str:
    admin = new_token(node, "admin", "ops")
    stable.add_to(node)
    candidate.add_to(node)
    node.cli("model", "use", "stable")
    node.cli("model", "canary", "candidate", "--percent", "20")
    wait_routing(server, admin, "the 20 % canary", active="stable", canary="candidate", canary_percent=20.0)
    return admin


def test_twenty_percent_canary_gets_its_share_and_conversations_stay_on_their_arm(
        node: Node, tmp_path: Path) -> None:
    with upstreams(tmp_path, "stable", "candidate") as (stable, candidate), running(node) as server:
        admin = _canary_setup(node, server, stable, candidate)

        # Distinct questions, so no answer comes from the cache and every turn reaches a model.
        firsts = parallel(lambda i: chat(server, f"Question {i}: where is my order number {i}?"),
                          CONVERSATIONS, WORKERS)
        assert all(f["reply"]["source"] == "llm" for f in firsts)
        assert len({f["conversation_id"] for f in firsts}) == CONVERSATIONS
        on_stable, on_candidate = stable.requests, candidate.requests
        assert on_stable + on_candidate == CONVERSATIONS
        share = on_candidate / CONVERSATIONS
        assert 0.17 <= share <= 0.23, f"canary got {share:.1%} of {CONVERSATIONS} conversations"
        metrics = scrape(server)
        assert metrics['appliance_model_requests_total{arm="canary",model="candidate"}'] == on_candidate
        assert metrics['appliance_model_requests_total{arm="active",model="stable"}'] == on_stable

        # The traces agree with the mocks' counters, conversation by conversation.
        sample = firsts[:200]
        routes = parallel(lambda i: trace(server, admin, sample[i]["trace_id"]), len(sample), WORKERS)
        arms = {r["conversation_id"]: (r["route"], r["arm"]) for r in routes}
        assert set(arms.values()) == {("stable", "active"), ("candidate", "canary")}, set(arms.values())

        # Follow-up turns stay on the arm the conversation started on.
        def follow_up(i: int) -> list[tuple[str, str]]:
            seen = []
            for n in range(2):
                answer = chat(server, f"And what about the invoice? ({n})", sample[i])
                assert answer["reply"]["source"] == "llm", answer
                got = trace(server, admin, answer["trace_id"])
                seen.append((got["route"], got["arm"]))
            return seen

        later = parallel(follow_up, len(sample), WORKERS)
        for first, turns in zip(sample, later, strict=True):
            assert all(turn == arms[first["conversation_id"]] for turn in turns), (first["conversation_id"], turns)
        moved_to_candidate = sum(1 for arm in arms.values() if arm[0] == "candidate")
        assert candidate.requests - on_candidate == 2 * moved_to_candidate


def test_promote_and_rollback_under_load_fail_no_request(node: Node, tmp_path: Path) -> None:
    with upstreams(tmp_path, "stable", "candidate") as (stable, candidate), running(node) as server:
        admin = _canary_setup(node, server, stable, candidate)
        results: list[tuple[int, Any]] = []
        lock = threading.Lock()
        stop = threading.Event()

        def visitor(worker: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                status, first = call(server.url, "POST", "/api/v1/chat",
                                     {"text": f"worker {worker} question {n}: is my refund done?"})
                outcome = [(status, first)]
                if status == 200:
                    outcome.append(call(server.url, "POST", "/api/v1/chat", {
                        "text": f"and the shipping? ({n})", "conversation_id": first["conversation_id"],
                        "visitor_token": first["visitor_token"]}))
                with lock:
                    results.extend(outcome)

        def done() -> int:
            with lock:
                return len(results)

        threads = [threading.Thread(target=visitor, args=(w,), daemon=True) for w in range(6)]
        for thread in threads:
            thread.start()
        try:
            wait_for(lambda: done() >= 100, "load to build up", timeout=30)
            node.cli("model", "promote")
            wait_routing(server, admin, "promote", active="candidate", canary=None)
            promoted_at, candidate_before = done(), candidate.requests
            wait_for(lambda: done() >= promoted_at + 100, "load after the promote", timeout=30)
            stable_before = stable.requests
            time.sleep(0.5)
            assert candidate.requests > candidate_before + 50
            assert stable.requests == stable_before  # no new turn reaches the old model

            node.cli("model", "rollback")
            wait_routing(server, admin, "rollback", active="stable", canary=None)
            rolled_at, stable_before = done(), stable.requests
            wait_for(lambda: done() >= rolled_at + 100, "load after the rollback", timeout=30)
            assert stable.requests > stable_before + 50
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)

        failed = [(status, body) for status, body in results
                  if status != 200 or not body.get("reply") or body["reply"]["source"] != "llm"]
        assert not failed, f"{len(failed)} of {len(results)} requests failed, e.g. {failed[:3]}"
        assert len(results) >= 300
