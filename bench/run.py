"""Run the benchmark: ``.venv/bin/python -m bench.run [--quick] [--out DIR]``.

Starts the mock upstream and a fresh appliance node configured against it with the real CLI,
drives each scenario with wrk (warm-up, then a measured run at fixed concurrency), reads the
appliance's traces for per-stage timings, then takes ``bench/latency.py``'s closed-loop
measurements (failover with the breaker open against the same node, the router and the event
loop in process), runs LiteLLM's proxy under the same load for the text scenario, and writes
``latest.json`` and ``latest.md`` into the output directory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import kb_scale, latency, loadgen, peer, report, server_metrics, traces
from bench.processes import Appliance, BenchError, ResourceSampler, rss_mb, set_mock, start_mock
from bench.profile import profile
from bench.scenarios import MEMORY_TARGET, NAMES, PEER_TARGET, SCENARIOS, Scenario, met
from bench.visitors import make_pool

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent.parent / "README.md"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short runs, 500 chunks, peer only if installed (< 2 min)")
    p.add_argument("--out", type=Path, default=RESULTS, help="where latest.json and latest.md go")
    p.add_argument("--scenarios", default=",".join(NAMES), help=f"comma-separated subset of {','.join(NAMES)}")
    p.add_argument("--latency-ms", type=float, default=50.0, help="mock upstream latency (default 50)")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--duration", type=float, help="seconds per measured run (default 30; quick 5)")
    p.add_argument("--warmup", type=float, help="seconds of warm-up (default 5; quick 2)")
    p.add_argument("--kb-chunks", type=int, help="knowledge-base size (default 10000; quick 500)")
    p.add_argument("--image-visitors", type=int, default=256, help="visitors (each with an image) in the pool")
    p.add_argument("--no-peer", action="store_true", help="skip LiteLLM")
    p.add_argument("--no-latency", action="store_true", help="skip bench/latency.py's closed-loop measurements")
    p.add_argument("--peer-workers", type=int, default=0, help="LiteLLM workers (default: one per core)")
    p.add_argument("--profile", action="store_true", help="py-spy the server during the text scenario")
    p.add_argument("--readme", action="store_true", help="put the Markdown table into README's Benchmarks section")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, node) for inspection")
    args = p.parse_args(argv)
    args.duration = args.duration or (5.0 if args.quick else 30.0)
    args.warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 5.0)
    args.kb_chunks = args.kb_chunks if args.kb_chunks is not None else (500 if args.quick else 10_000)
    args.peer_workers = args.peer_workers or os.cpu_count() or 1
    unknown = set(args.scenarios.split(",")) - set(NAMES)
    if unknown:
        p.error(f"unknown scenarios {sorted(unknown)}; known: {NAMES}")
    return args


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.load = loadgen.Load(args.connections, args.threads, args.duration, args.warmup)
        self.app = Appliance(workdir)
        self.mock_url = ""
        self.mock_pid = 0
        self.kb_chunks = 0
        self.kb_ingest_s: float | None = None
        self.peak_rss = 0.0

    def scenario(self, s: Scenario) -> dict[str, Any]:
        env: dict[str, str] = {}
        mode = s.mode
        if s.name == "image":
            size = min(self.args.image_visitors, 64 if self.args.quick else self.args.image_visitors)
            say(f"image: creating {size} visitors, each with a PNG uploaded")
            env["BENCH_POOL"] = str(make_pool(self.app.url, size, self.workdir / "visitors.txt"))
        if s.name == "kb" and (skipped := self.ingest()):
            return {"skipped": skipped}
        if mode == "kb":
            env["BENCH_QUERIES"] = str(self.workdir / "queries.txt")
        if s.name == "failover":
            mode = "kb" if self.kb_chunks else "text"
            set_mock(self.mock_url, mode="error")
        say(f"{s.name}: warm-up {self.load.warmup_s:g} s, then {self.load.duration_s:g} s at "
            f"{self.load.connections} connections")
        salt = f"{s.name}{int(time.time())}"
        if self.load.warmup_s > 0:
            loadgen.run_wrk(self.app.url, mode, self.load, self.load.warmup_s, salt + "w", env)
        before, counters = traces.last_rowid(self.app.db), server_metrics.scrape(self.app.url)
        spying = self.args.profile and s.name == "text"
        with ResourceSampler(self.app.pid, self.watched(appliance=self.app.pid)) as sampler, \
                profile(self.app.pid, spying, self.load.duration_s, self.workdir) as spy:
            result = loadgen.run_wrk(self.app.url, mode, self.load, self.load.duration_s, salt + "m", env)
        server = server_metrics.between(counters, server_metrics.scrape(self.app.url))
        if s.name == "failover":
            set_mock(self.mock_url, mode="ok")
        rate = result["requests_per_s"] or 1
        result.update(what=s.what, questions=mode, peak_rss_mb=round(sampler.peak_mb, 1),
                      cpu_ms_per_request=round(sampler.cpu["appliance"] * 10 / rate, 2),
                      cpu_percent=sampler.cpu["appliance"], cpu=sampler.cpu, target=s.target)
        result["stages"] = traces.stage_summary(self.app.db, before, traces.last_rowid(self.app.db))
        result["server"] = server
        result["notes"] = notes(s, result, self.kb_chunks)
        if spy.get("top_self"):
            result["profile"] = spy
        if s.target:
            result["met"] = met(s.target, result)
        self.peak_rss = max(self.peak_rss, sampler.peak_mb)
        lat = result["latency_ms"]
        say(f"{s.name}: {result['requests_per_s']} req/s, p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
            f"errors {result['error_count']}, peak RSS {sampler.peak_mb:.0f} MB, engine medians "
            f"{result['stages']['median_ms']}")
        return result

    def watched(self, **pids: int) -> dict[str, int]:
        return {**pids, "mock": self.mock_pid}

    def ingest(self) -> str | None:
        """Ingest the synthetic knowledge base with ``appliance kb add``; the reason it can't, if not."""
        if not self.app.has_command("kb"):
            return "the appliance has no `kb` command yet (`appliance kb add DIR` is not built)"
        docs = self.workdir / "kb"
        files = kb_scale.write_corpus(docs, self.args.kb_chunks)
        (self.workdir / "queries.txt").write_text("\n".join(kb_scale.queries(500)) + "\n", encoding="utf-8")
        say(f"kb: ingesting {files} files (about {self.args.kb_chunks} chunks, bench/kb_scale.py's corpus) "
            "with `appliance kb add` while the server runs")
        started = time.monotonic()
        self.app.cli("kb", "add", str(docs))
        self.kb_ingest_s = round(time.monotonic() - started, 1)
        self.kb_chunks = count_chunks(self.app.db)
        say(f"kb: {self.kb_chunks} chunks in {self.kb_ingest_s} s")
        time.sleep(1.5)  # let the server see the new knowledge-base version
        return None

    def run_peer(self) -> dict[str, Any]:
        log = self.workdir / "peer-install.log"
        if self.args.quick and peer.installed_version() is None:
            return {"skipped": f"quick mode does not install {peer.LITELLM}; a full run does"}
        try:
            version = peer.ensure_installed(log)
            say(f"peer: LiteLLM {version}, {self.args.peer_workers} workers")
            proxy, url = peer.start(self.workdir, self.mock_url, self.args.peer_workers)
        except BenchError as exc:
            return {"error": str(exc)}
        try:
            salt = f"peer{int(time.time())}"
            env = {"BENCH_MODEL": peer.MODEL}
            if self.load.warmup_s > 0:
                loadgen.run_wrk(url, "openai", self.load, self.load.warmup_s, salt + "w", env)
            with ResourceSampler(proxy.pid, self.watched(peer=proxy.pid)) as sampler:
                result = loadgen.run_wrk(url, "openai", self.load, self.load.duration_s, salt + "m", env)
        except BenchError as exc:
            return {"error": f"{exc}\n{proxy.tail()}"}
        finally:
            proxy.stop()
        rate = result["requests_per_s"] or 1
        result.update(name="LiteLLM proxy", version=version, workers=self.args.peer_workers, package=peer.LITELLM,
                      cpu=sampler.cpu, cpu_ms_per_request=round(sampler.cpu["peer"] * 10 / rate, 2))
        lat = result["latency_ms"]
        say(f"peer: {result['requests_per_s']} req/s, p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
            f"errors {result['error_count']}")
        return result

    def run(self) -> dict[str, Any]:
        chosen = self.args.scenarios.split(",")
        say(f"work directory {self.workdir}; mock upstream at {self.args.latency_ms:g} ms")
        mock, self.mock_url = start_mock(self.workdir, self.args.latency_ms)
        self.mock_pid = mock.pid
        scenarios: dict[str, Any] = {}
        try:
            started = time.monotonic()
            self.app.init()
            self.app.use_model(self.mock_url)
            self.app.serve()
            startup_s = round(time.monotonic() - started, 1)
            time.sleep(1.0)
            idle = rss_mb(self.app.pid)
            say(f"appliance ready in {startup_s} s (init + serve + model add/use); idle RSS {idle:.0f} MB")
            for s in SCENARIOS:
                if s.name in chosen:
                    try:
                        scenarios[s.name] = self.scenario(s)
                    except BenchError as exc:
                        say(f"{s.name} failed: {exc}")
                        scenarios[s.name] = {"error": str(exc)[-1500:], "target": s.target}
                    if "skipped" in scenarios[s.name]:
                        scenarios[s.name]["target"] = s.target
                        say(f"{s.name}: skipped: {scenarios[s.name]['skipped']}")
            closed_loop = {} if self.args.no_latency else latency.measure(
                self.app, self.mock_url, quick=self.args.quick, say=lambda line: say(f"latency {line}"))
            self.app.stop()
            peer_result = ({"skipped": "--no-peer"} if self.args.no_peer or "text" not in chosen
                           else self.run_peer())
        finally:
            self.app.stop()
            mock.stop()
        return self.results(scenarios, peer_result, idle, startup_s, closed_loop)

    def results(self, scenarios: dict[str, Any], peer_result: dict[str, Any], idle: float,
                startup_s: float, closed_loop: dict[str, Any]) -> dict[str, Any]:
        results: dict[str, Any] = {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": " ".join([".venv/bin/python -m bench.run", *map(shlex.quote, sys.argv[1:])]),
            "mode": "quick" if self.args.quick else "full",
            "machine": {**report.machine(), "wrk": loadgen.wrk_version()},
            "settings": {"connections": self.load.connections, "threads": self.load.threads,
                         "duration_s": self.load.duration_s, "warmup_s": self.load.warmup_s,
                         "upstream_latency_ms": self.args.latency_ms, "kb_chunks_requested": self.args.kb_chunks,
                         "kb_chunks": self.kb_chunks, "kb_ingest_s": self.kb_ingest_s},
            "memory": {"idle_rss_mb": round(idle, 1), "peak_rss_mb": round(self.peak_rss, 1),
                       "target": MEMORY_TARGET, "startup_s": startup_s},
            "scenarios": scenarios,
            "latency": closed_loop,
            "peer": peer_result,
        }
        text = scenarios.get("text", {})
        if "requests_per_s" in peer_result and "requests_per_s" in text and peer_result["requests_per_s"]:
            results["comparison"] = {
                "throughput_ratio": round(text["requests_per_s"] / peer_result["requests_per_s"], 2),
                "p99_ratio": round(text["latency_ms"]["p99"] / peer_result["latency_ms"]["p99"], 2),
                "target": PEER_TARGET,
            }
        return results


def notes(s: Scenario, result: dict[str, Any], kb_chunks: int) -> list[str]:
    """What a reader of the numbers must know that the numbers don't say."""
    said = []
    stages, cpu = result["stages"], result["cpu"]
    if s.name == "kb" and "retrieval" not in stages["median_ms"]:
        said.append(f"{kb_chunks} chunks were ingested but no turn did retrieval: the running engine does not "
                    "search the knowledge base, so this measures the text path with KB-style questions")
    if s.name == "failover" and result["questions"] == "text":
        said.append("no knowledge base: the degradation chain had no chunks to quote")
    latency, server = result["latency_ms"], result["server"]
    if latency["mean"] > 1.25 * latency["mean_uncorrected"]:
        said.append(f"wrk's coordinated-omission correction dominates the tail: requests averaged "
                    f"{latency['mean_uncorrected']:.0f} ms (wrk reports {latency['mean']:.0f}); the server's own "
                    f"histogram puts its p99 under {server['turn_p99_at_most_ms']} ms with "
                    f"{server['turns_over_1s']} of {server['turns']:.0f} turns over 1 s")
    if cpu["other"] > 25:
        said.append(f"processes outside the benchmark used {cpu['other']:.0f}% of a core meanwhile: "
                    "the machine was shared, so throughput is understated")
    return said


def count_chunks(db: Path) -> int:
    from appliance.store.db import connect

    conn = connect(db, readonly=True)
    try:
        return int(conn.execute("SELECT count(*) FROM kb_chunks").fetchone()[0])
    except Exception:
        return 0
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    loadgen.wrk_path()
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="appliance-bench-"))
    try:
        results = Bench(args, workdir).run()
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    table = report.markdown(results)
    report.write_json(results, args.out / "latest.json")
    (args.out / "latest.md").write_text(table, encoding="utf-8")
    print("\n" + table)
    say(f"wrote {args.out / 'latest.json'} and latest.md in {results['elapsed_s']} s")
    if args.readme and not report.update_readme(README, table):
        say("README.md has no bench markers; table not copied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
