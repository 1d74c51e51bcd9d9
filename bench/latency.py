"""Latencies the tests no longer assert: failover with the breakers open, the router failing fast,
and the event loop's gaps while the built-in model generates.

    .venv/bin/python -m bench.latency [--quick]

Three closed-loop measurements (``bench.run`` runs them too, after its wrk scenarios, unless
``--no-latency``; there the failover one uses the run's own node and knowledge base):

- ``failover_open``: a node whose model (the mock upstream) fails every request; once its
  circuit breaker is open, ``--visitors`` visitors (English and Chinese by turns) ask a question
  each, ``--workers`` at a time, over HTTP. Per-request latency as the client sees it, the reply
  sources, and how many calls still reached the upstream (only half-open probes may).
- ``router_open``: a ModelRouter in this process over three mock upstreams (one failing, one
  hanging, one dropping connections), every breaker open; ``--calls`` calls at once, each must
  fail over all three without sending anything.
- ``loop_gap``: the built-in chat model generating in this process while a task wakes every
  5 ms; the gaps between its wake-ups (a loop blocked by generation would show one gap as long
  as the generation).

Prints one JSON object per measurement and, last, a Markdown table (``bench.report``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.processes import Appliance, BenchError, http_json, set_mock, start_mock
from bench.scenarios import LATENCY_TARGETS

TICK_S = 0.005


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p99 (nearest rank) and max, in milliseconds, of ``values`` in seconds."""
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000, 2)

    return {"p50_ms": rank(0.5), "p99_ms": rank(0.99), "max_ms": rank(1.0)}


def met(name: str, result: dict[str, Any]) -> bool:
    target = LATENCY_TARGETS[name]
    return all(result[key] <= limit for key, limit in target.items())


# -- failover over HTTP ---------------------------------------------------------------------


def _breakers(url: str, token: str) -> dict[str, str]:
    status, body = http_json(f"{url}/api/v1/admin/models", timeout=30, token=token)
    if status != 200 or not isinstance(body, dict):
        raise BenchError(f"/api/v1/admin/models answered {status}")
    return {m["model"]: m["breaker"] for m in body["metrics"]["models"]}


def _ask(url: str, text: str) -> tuple[float, int, str]:
    started = time.perf_counter()
    status, body = http_json(f"{url}/api/v1/chat", {"text": text}, timeout=120)
    elapsed = time.perf_counter() - started
    source = body["reply"]["source"] if status == 200 and isinstance(body, dict) and body.get("reply") else ""
    return elapsed, status, source


def _question(i: int) -> str:
    return f"访客 {i}：我的包裹 {i} 号在哪里？" if i % 2 else f"Visitor {i}: where is my parcel number {i}?"


def failover_open(app: Appliance, mock_url: str, visitors: int, workers: int) -> dict[str, Any]:
    """Visitors' latency with every upstream failing and its breaker open (see the module doc)."""
    token = app.cli("token", "create", "--role", "admin", "--name", f"bench-{time.time_ns()}").strip()
    stats = mock_url.removesuffix("/v1") + "/_stats"
    set_mock(mock_url, mode="error")
    try:
        deadline = time.monotonic() + 120
        while set(_breakers(app.url, token).values()) != {"open"}:
            if time.monotonic() > deadline:
                raise BenchError(f"the breakers did not open within 120 s: {_breakers(app.url, token)}")
            _ask(app.url, f"warm-up {time.monotonic()}: is anyone there?")
        before = http_json(stats)[1]["requests"]  # type: ignore[index]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            answers = list(pool.map(lambda i: _ask(app.url, _question(i)), range(visitors)))
        seconds = time.monotonic() - started
        after = http_json(stats)[1]["requests"]  # type: ignore[index]
        breakers = _breakers(app.url, token)
    finally:
        set_mock(mock_url, mode="ok")
    result: dict[str, Any] = {
        "visitors": visitors, "workers": workers, **percentiles([elapsed for elapsed, _, _ in answers]),
        "errors": sum(status != 200 for _, status, _ in answers),
        "sources": dict(Counter(source for _, _, source in answers).most_common()),
        "upstream_calls": after - before, "breakers_after": breakers, "seconds": round(seconds, 1),
    }
    result["met"] = met("failover_open", result) and result["errors"] == 0
    return result


# -- the router, in process -----------------------------------------------------------------


async def _router_open(calls: int) -> dict[str, Any]:
    from appliance.core.errors import AllProvidersFailed
    from appliance.core.ports import ChatMessage, ChatProvider, ChatRequest
    from appliance.core.router import ModelRouter
    from appliance.core.routing import ModelSpec, RoutingTable, add_model, set_fallback, use
    from appliance.core.traffic import BreakerSettings
    from appliance.providers import OpenAIProvider, make_session
    from bench.mock_upstream import MockUpstream

    request = ChatRequest(messages=[ChatMessage(role="user", content="Where is my order?")])
    async with MockUpstream() as a, MockUpstream() as b, MockUpstream() as c, make_session() as session:
        mocks = {"a": a, "b": b, "c": c}
        a.set(mode="error")
        b.set(mode="hang")
        c.set(mode="drop")
        table = RoutingTable()
        for name, mock in mocks.items():
            table = add_model(table, ModelSpec(name=name, base_url=mock.url, model=name, max_retries=0,
                                               timeout_s=0.2))
        table = set_fallback(use(table, "a"), ["b", "c"])

        def factory(spec: ModelSpec) -> ChatProvider:
            return OpenAIProvider(spec, session, api_key=None)

        router = ModelRouter(table, factory, rng=random.Random(3),
                             breaker=BreakerSettings(consecutive_failures=2, open_s=600))
        try:
            for i in range(2):
                with contextlib.suppress(AllProvidersFailed):
                    await router.complete(f"warm-{i}", request)
            if {m.breaker for m in router.snapshot().models} != {"open"}:
                raise BenchError(f"router breakers did not open: {router.snapshot().models}")
            before = sum(m.requests for m in mocks.values())

            async def timed(i: int) -> float:
                began = time.perf_counter()
                with contextlib.suppress(AllProvidersFailed):
                    await router.complete(f"visitor-{i}", request)
                return time.perf_counter() - began

            durations = await asyncio.gather(*(timed(i) for i in range(calls)))
            sent = sum(m.requests for m in mocks.values()) - before
        finally:
            await router.aclose()
    result: dict[str, Any] = {"calls": calls, **percentiles(list(durations)), "upstream_calls": sent}
    result["met"] = met("router_open", result) and sent == 0
    return result


def router_open(calls: int) -> dict[str, Any]:
    return asyncio.run(_router_open(calls))


# -- the event loop while the built-in model generates -------------------------------------


async def _loop_gap(tokens: int, rounds: int, threads: int) -> dict[str, Any]:
    from appliance.local_model import CHAT_FILE, LocalChat, builtin_model_dir

    path = builtin_model_dir() / CHAT_FILE
    if not path.is_file():
        return {"skipped": f"no built-in chat model at {path} (build/assemble_models.py puts it there)"}
    chat = await asyncio.to_thread(LocalChat.load, path, threads=threads, n_ctx=2048)
    prompt = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    started = time.perf_counter()
    generated = 0
    try:
        for _ in range(rounds):
            generated += (await chat.complete(prompt, max_tokens=tokens))[1]
    finally:
        task.cancel()
        seconds = time.perf_counter() - started
        await asyncio.to_thread(chat.close)
    result: dict[str, Any] = {
        "tick_ms": TICK_S * 1000, "ticks": len(gaps), **percentiles(gaps), "tokens": generated,
        "generation_s": round(seconds, 2), "tokens_per_s": round(generated / seconds, 1), "threads": threads,
    }
    result["met"] = met("loop_gap", result)
    return result


def loop_gap(tokens: int, rounds: int, threads: int = 2) -> dict[str, Any]:
    return asyncio.run(_loop_gap(tokens, rounds, threads))


# -- all three ------------------------------------------------------------------------------


def measure(app: Appliance, mock_url: str, *, quick: bool, say: Callable[[str], None] = print
            ) -> dict[str, Any]:
    """The three measurements against a served node whose active model is the mock at ``mock_url``."""
    visitors, rounds = (20, 1) if quick else (100, 2)
    results: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("failover_open", lambda: failover_open(app, mock_url, visitors, workers=4)),
        ("router_open", lambda: router_open(200)),
        ("loop_gap", lambda: loop_gap(64 if quick else 160, rounds)),
    ]
    for name, step in steps:
        try:
            results[name] = step()
        except BenchError as exc:
            results[name] = {"error": str(exc)[-1500:]}
        say(f"{name}: {json.dumps(results[name], ensure_ascii=False)}")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 failover visitors, one 64-token generation")
    args = parser.parse_args(argv)
    from bench import report

    with tempfile.TemporaryDirectory(prefix="bench-latency-") as work:
        mock, mock_url = start_mock(Path(work), latency_ms=50)
        app = Appliance(Path(work))
        try:
            app.init()
            app.use_model(mock_url)
            app.serve()
            results = measure(app, mock_url, quick=args.quick)
        finally:
            app.stop()
            mock.stop()
    print(json.dumps(results, ensure_ascii=False))
    print("\n" + "\n".join(report.latency_lines(results)))


if __name__ == "__main__":
    main()
