"""The scenarios, in the order they run against one appliance, with issue 5's targets.

Order matters: the answer cache, the knowledge base and the breaker state carry over. ``text``,
``cache`` and ``image`` run with an empty knowledge base; ``kb`` ingests first; ``failover`` runs
last, with the upstream failing every request, asking knowledge-base questions when there is a
knowledge base (so the degradation chain has chunks to quote), plain ones otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Scenario:
    name: str
    mode: str  # BENCH_MODE of lua/chat.lua
    what: str
    target: dict[str, float | bool] = field(default_factory=dict)


SCENARIOS = [
    Scenario("text", "text", "new conversation per request, plain question: intent + route + upstream + trace write",
             {"requests_per_s": 800, "p99_ms": 150}),
    Scenario("cache", "cache", "8 first-turn questions repeated (answer-cache hits after the first of each)"),
    Scenario("image", "image", "new conversation per request for a pooled visitor, with its uploaded PNG, "
             "to a vision model", {"requests_per_s": 210, "p99_ms": 250}),
    Scenario("kb", "kb", "new conversation per request, a question about the knowledge base (bench/kb_scale.py's "
             "corpus and queries): + hybrid retrieval",
             {"requests_per_s": 450, "p99_ms": 200}),
    Scenario("failover", "kb", "every upstream request fails (mock in error mode): the degradation chain answers",
             {"p99_ms": 1000, "no_errors": True}),
]
NAMES = [s.name for s in SCENARIOS]
PEER_TARGET = {"throughput_ratio": 3.3, "p99_ratio": 1.0}
MEMORY_TARGET = {"idle_rss_mb": 150, "peak_rss_mb": 400}
# bench/latency.py's closed-loop measurements; the bounds the tests used to assert.
LATENCY_TARGETS: dict[str, dict[str, float]] = {
    "failover_open": {"p99_ms": 1000},
    "router_open": {"p99_ms": 1000},
    "loop_gap": {"max_ms": 250},
}


def met(target: dict[str, float | bool], result: dict[str, object]) -> bool:
    latency = result["latency_ms"]
    assert isinstance(latency, dict)
    if not result.get("requests"):  # a run in which no request finished has no percentiles to meet
        return False
    ok = True
    if "requests_per_s" in target:
        ok &= float(result["requests_per_s"]) >= float(target["requests_per_s"])  # type: ignore[arg-type]
    if "p99_ms" in target:
        ok &= latency["p99"] <= float(target["p99_ms"])
    if target.get("no_errors"):
        ok &= result["error_count"] == 0
    return ok
