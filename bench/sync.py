"""Replication between two nodes on loopback: catch-up rate, memory during it, live lag.

    .venv/bin/python -m bench.sync [--events 100000] [--rate 1000] [--seconds 20]

Two nodes made by ``appliance init`` in a temporary directory and paired as the README says.
Node A gets ``--events`` events written into its store beforehand (conversations: a visitor
message and two replies each, as the chat writes them). Each node then runs as its own process
(``--serve``: the store and the SyncService from its config, what ``appliance serve`` runs for
sync, without the models):

- ``catch_up``: from B's first connection until B holds every event: events per second, and
  B's resident memory sampled every 0.2 s (``rss_mb`` at 10 %, 50 % and 100 % of the way, and
  the peak), which must stay flat however large the backlog;
- ``live``: A's process then writes ``--rate`` events a second for ``--seconds`` through its own
  writer (the server's path: commits wake the sessions at once); this process watches B's
  database every 10 ms and takes, for each event, the time from its hlc (A's commit) to when it
  is visible at B: p50, p99 and max.

Prints one JSON object (last line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "appliance"]


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(config: Path, *args: str) -> str:
    return subprocess.run([*CLI, "--config", str(config), *args], check=True, capture_output=True, text=True,
                          cwd=ROOT).stdout.strip()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def serve(config_path: Path, rate: float, seconds: float, start_file: Path | None) -> None:
    from appliance.commands._context import read_config
    from appliance.node import NodeIdentity
    from appliance.store import Store
    from appliance.sync import SyncService

    config = read_config(config_path)
    identity = NodeIdentity.load(config.data_dir)
    store = Store.from_config(config, identity.node_id)
    service = SyncService(store, identity, config.sync, name=config.node.name, data_dir=config.data_dir)
    await service.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    if rate and start_file is not None:
        while not start_file.exists():
            await asyncio.sleep(0.05)
        await _write_steadily(store, rate, seconds)
    await stop.wait()
    await service.stop()
    store.close()


def _conversation_events(n: int) -> list[Any]:
    from appliance.core import events as ev
    from appliance.core.tokens import new_id
    from appliance.core.types import Message

    cid = new_id("conv")
    return [ev.ConversationStarted(conversation_id=cid, visitor_id=new_id("vis")),
            *[ev.MessageAdded(message=Message(id=new_id("msg"), conversation_id=cid,
                                              role="visitor" if i == 0 else "bot",
                                              text=f"turn {n}.{i}: 我的信用卡丢了怎么办 / where is my card?"))
              for i in range(3)]]


async def _write_steadily(store: Any, rate: float, seconds: float) -> None:
    started = time.monotonic()
    written = 0
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        while written < due:
            await store.append(*_conversation_events(written))
            written += 4
        await asyncio.sleep(0.005)


def fill(directory: Path, events: int) -> int:
    from appliance.node import NodeIdentity
    from appliance.store import Store

    store = Store.open(directory / "appliance.db", NodeIdentity.load(directory).node_id)
    try:
        written = 0
        while written < events:
            batch = [p for n in range(written, written + 400, 4) for p in _conversation_events(n)]
            store.append_sync(*batch)
            written += len(batch)
    finally:
        store.close()
    return written


def _count(db: Path, origin: str) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            # A stream is numbered 1, 2, 3… without gaps: its highest number is how many it holds
            # (an index probe, where count(*) would scan and slow the node being measured).
            return int(conn.execute("SELECT max(seq) FROM events WHERE origin = ?", (origin,)).fetchone()[0] or 0)
    except sqlite3.OperationalError:
        return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    nodes = {}
    for name in ("a", "b"):
        port = _free_udp_port()
        subprocess.run([*CLI, "init", str(work / name), "--name", f"site-{name}", "--sync-port", str(port)],
                       check=True, capture_output=True, cwd=ROOT)
        config = work / name / "config.toml"
        config.write_text(config.read_text().replace('host = "0.0.0.0"', 'host = "127.0.0.1"', 1))
        nodes[name] = (config, port, _cli(config, "node", "id"))
    (config_a, port_a, id_a), (config_b, port_b, id_b) = nodes["a"], nodes["b"]
    _cli(config_a, "pair", "add", id_b, f"127.0.0.1:{port_b}", "--name", "site-b")
    _cli(config_b, "pair", "add", id_a, f"127.0.0.1:{port_a}", "--name", "site-a")
    fill(work / "a", args.events)
    total = _count(work / "a" / "appliance.db", id_a)  # with init's and pair add's own events
    start_live = work / "start-live"
    procs = []
    try:
        for config, extra in ((config_a, ["--rate", str(args.rate), "--seconds", str(args.seconds),
                                          "--start-file", str(start_live)]), (config_b, [])):
            procs.append(subprocess.Popen([sys.executable, "-m", "bench.sync", "--serve", str(config), *extra],
                                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        db_b = work / "b" / "appliance.db"
        samples: list[tuple[int, float]] = []
        first = started = None
        cpu: list[float] = []
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            held = _count(db_b, id_a)
            samples.append((held, _rss_mb(procs[1].pid)))
            if held and first is None:
                first, started = held, time.monotonic()
                cpu = [_cpu_s(proc.pid) for proc in procs]
            if held >= total:
                break
            time.sleep(0.2)
        assert started is not None and first is not None, "B never received anything"
        seconds = time.monotonic() - started
        cpu = [round(_cpu_s(proc.pid) - before, 1) for proc, before in zip(procs, cpu, strict=True)]
        catch_up = {
            "events": total, "seconds": round(seconds, 2), "events_per_s": round((total - first) / seconds),
            "rss_mb": {f"{p}%": round(next(r for h, r in samples if h >= total * p / 100), 1) for p in (10, 50, 100)},
            "rss_peak_mb": round(max(r for _, r in samples), 1), "cpu_s": {"sender": cpu[0], "receiver": cpu[1]},
        }
        live = measure_live(db_b, id_a, start_live, args)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"catch_up": catch_up, "live": live, "cpus": os.cpu_count()}


def measure_live(db: Path, origin: str, start_file: Path, args: argparse.Namespace) -> dict[str, Any]:
    lags: list[float] = []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    last = conn.execute("SELECT max(seq) FROM events WHERE origin = ?", (origin,)).fetchone()[0] or 0
    start_file.touch()
    ends = time.monotonic() + args.seconds + 5
    while time.monotonic() < ends:
        rows = conn.execute("SELECT seq, hlc FROM events WHERE origin = ? AND seq > ? ORDER BY seq",
                            (origin, last)).fetchall()
        seen_ms = time.time_ns() / 1e6
        for seq, hlc in rows:
            lags.append(max(0.0, seen_ms - (hlc >> 16)))
            last = seq
        time.sleep(0.01)
    conn.close()
    if not lags:
        return {"events": 0}
    lags.sort()
    return {"events": len(lags), "rate": args.rate, "p50_ms": round(statistics.median(lags), 1),
            "p99_ms": round(lags[int(len(lags) * 0.99) - 1], 1), "max_ms": round(lags[-1], 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.sync", description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=100_000, help="backlog written into A before B connects")
    p.add_argument("--rate", type=float, default=1000.0, help="events per second A writes in the live phase")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the live phase")
    p.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--start-file", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.rate, args.seconds, args.start_file))
        return 0
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
