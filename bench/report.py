"""The machine a run happened on, and its results as JSON and as Markdown tables.

``latest.json`` is written through a temporary file and renamed, so a reader never sees half of
it. ``update_readme`` replaces only what lies between the two marker comments of README's
Benchmarks section.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"


def machine() -> dict[str, object]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "memory_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    partial.replace(path)


def _ms(value: object) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) and value >= 100 else (
        f"{value:.1f}" if isinstance(value, int | float) else "–")


def _target(t: dict[str, Any] | None) -> str:
    if not t:
        return ""
    parts = []
    if "requests_per_s" in t:
        parts.append(f"≥ {t['requests_per_s']} req/s")
    if "p99_ms" in t:
        parts.append(f"p99 ≤ {t['p99_ms']:g} ms")
    if t.get("no_errors"):
        parts.append("all answered")
    return ", ".join(parts)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def _cpu(cpu: dict[str, float], server: str) -> str:
    return f"{cpu[server]:.0f}% / {cpu['machine']:.0f}% ({cpu['other']:.0f}%)"


def _stage(stages: dict[str, Any], key: str) -> str:
    if key not in stages["median_ms"]:
        return "–"
    had, sampled = stages["with_stage"][key], stages["sampled"]
    return _ms(stages["median_ms"][key]) + (f" ({had}/{sampled})" if had < sampled else "")


def markdown(results: dict[str, Any]) -> str:
    m, s = results["machine"], results["settings"]
    lines = [
        f"Measured {results['date']} on {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB RAM, "
        f"Linux {m['kernel']}, Python {m['python']}; load generator, mock upstream and appliance on the same "
        f"machine. Command: `{results['command']}` ({results['mode']} mode: wrk {s['connections']} connections, "
        f"{s['threads']} threads, {s['warmup_s']:g} s warm-up then {s['duration_s']:g} s per scenario; "
        f"upstream latency {s['upstream_latency_ms']:g} ms).",
        "",
        "| scenario | req/s | p50 ms | p95 ms | p99 ms | errors | peak RSS MB | CPU: appliance / machine "
        "(other) | target | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for name, r in results["scenarios"].items():
        if "skipped" in r or "error" in r:
            why = f"{'skipped' if 'skipped' in r else 'failed'}: {_first_line(r.get('skipped') or r.get('error'))}"
            lines.append(f"| {name} | – | – | – | – | – | – | – | {_target(r.get('target'))} | {why} |")
            continue
        lat = r["latency_ms"]
        lines.append(
            f"| {name} | {r['requests_per_s']:,.0f} | {_ms(lat['p50'])} | {_ms(lat['p95'])} | {_ms(lat['p99'])} | "
            f"{r['error_count']} | {r['peak_rss_mb']:.0f} | {_cpu(r['cpu'], 'appliance')} | "
            f"{_target(r.get('target'))} | {'yes' if r.get('met') else 'no'} |")
    peer = results.get("peer", {})
    if "requests_per_s" in peer:
        lat = peer["latency_ms"]
        lines.append(f"| peer: LiteLLM {peer['version']} text, {peer['workers']} workers | "
                     f"{peer['requests_per_s']:,.0f} | {_ms(lat['p50'])} | {_ms(lat['p95'])} | {_ms(lat['p99'])} | "
                     f"{peer['error_count']} | – | {_cpu(peer['cpu'], 'peer')} | | |")
    mem = results["memory"]
    lines += ["", f"Appliance memory: idle RSS {mem['idle_rss_mb']:.0f} MB (target ≤ 150), peak RSS "
                  f"{mem['peak_rss_mb']:.0f} MB under load (target ≤ 400)."]
    cmp_ = results.get("comparison")
    if cmp_:
        lines.append(f"Against LiteLLM (text): {cmp_['throughput_ratio']:.2f}× its requests/s (target ≥ 3.3×), "
                     f"p99 {cmp_['p99_ratio']:.2f}× its p99 (target < 1).")
    elif peer:
        lines.append(f"Peer: {peer.get('skipped') or peer.get('error')}")
    lines += ["", "Where the milliseconds go. Stage columns: medians of the appliance's own trace timings over a "
                  "sample of the measured run's turns ((n/N): only n of N sampled turns reached that stage). "
                  "`means` compares, as means, the engine's total, the server's whole turn (`/metrics`: engine "
                  "+ the two durable store appends + bookkeeping) and the client's latency (+ HTTP, queueing; "
                  "connections / throughput, free of wrk's coordinated-omission correction). "
                  "CPU is percent of one core; `other` is CPU used meanwhile by processes outside the benchmark.",
              "",
              "| scenario | cache | intent | retrieval | llm | local_model | engine total | means: engine / server "
              "turn / client | CPU ms per turn | group commit | replies |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    notes = []
    for name, r in results["scenarios"].items():
        notes += [f"- {name}: {note}" for note in r.get("notes", [])]
        stages = r.get("stages")
        if not stages or not stages.get("median_ms"):
            continue
        server = r["server"]
        means = (f"{_ms(stages['mean_ms'].get('total'))} / {_ms(server['turn_mean_ms'])} / "
                 f"{_ms(r['latency_ms']['mean_uncorrected'])}")
        sources = ", ".join(f"{k} {v}" for k, v in stages["sources"].items())
        if any(k.startswith("l") for k in stages["cache"]):
            sources += "; cache " + ", ".join(f"{k} {v}" for k, v in stages["cache"].items())
        cells = " | ".join(_stage(stages, k) for k in ("cache", "intent", "retrieval", "llm", "local_model", "total"))
        lines.append(f"| {name} | {cells} | {means} | {r['cpu_ms_per_request']:.2f} | "
                     f"{server['store_items_per_transaction']:g} writes/txn | {sources} |")
    if notes:
        lines += ["", "Notes:", *notes]
    if results.get("latency"):
        lines += ["", *latency_lines(results["latency"])]
    return "\n".join(lines) + "\n"


LATENCY_WHAT = {
    "failover_open": "failover, breaker open: {visitors} visitors (EN/ZH), {workers} at a time, over HTTP",
    "router_open": "router, every breaker open: {calls} calls at once, in process",
    "loop_gap": "event-loop gaps while the built-in model writes {tokens} tokens (a {tick_ms:g} ms tick)",
}


def latency_lines(latency: dict[str, Any]) -> list[str]:
    """``bench/latency.py``'s measurements as a Markdown table (milliseconds)."""
    from bench.scenarios import LATENCY_TARGETS

    lines = ["Closed-loop latencies (`bench/latency.py`). For `loop_gap` the columns are the gaps between "
             "a timer task's wake-ups, not requests.", "",
             "| measurement | p50 ms | p99 ms | max ms | target | met | details |",
             "| --- | ---: | ---: | ---: | --- | --- | --- |"]
    for name, r in latency.items():
        target = ", ".join(f"{key.removesuffix('_ms')} ≤ {limit:g} ms" for key, limit in LATENCY_TARGETS[name].items())
        if "skipped" in r or "error" in r:
            why = f"{'skipped' if 'skipped' in r else 'failed'}: {_first_line(r.get('skipped') or r.get('error'))}"
            lines.append(f"| {name} | – | – | – | {target} | {why} | |")
            continue
        if name == "failover_open":
            replies = ", ".join(f"{k or 'none'} {v}" for k, v in r["sources"].items())
            details = f"errors {r['errors']}; replies {replies}; {r['upstream_calls']} calls reached the upstream"
        elif name == "router_open":
            details = f"{r['upstream_calls']} calls reached the upstreams"
        else:
            details = f"{r['ticks']} ticks, {r['tokens_per_s']:g} tokens/s on {r['threads']} threads"
        lines.append(f"| {LATENCY_WHAT[name].format(**r)} | {_ms(r['p50_ms'])} | {_ms(r['p99_ms'])} | "
                     f"{_ms(r['max_ms'])} | {target} | {'yes' if r.get('met') else 'no'} | {details} |")
    return lines


def update_readme(readme: Path, table: str) -> bool:
    """Put ``table`` between the Benchmarks section's markers; False if the markers are missing."""
    text = readme.read_text(encoding="utf-8")
    if README_BEGIN not in text or README_END not in text:
        return False
    head, rest = text.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{table}{README_END}{tail}", encoding="utf-8")
    return True
