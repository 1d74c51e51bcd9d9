"""Load generation with wrk (Debian's package) and the Lua script in ``bench/lua/chat.lua``.

A run is a warm-up (results discarded) followed by the measured run, both at the same fixed
concurrency. Each run gets its own salt, so no text of the measured run was seen in the warm-up.

wrk 4 corrects its latency histogram for coordinated omission before reporting: a request that
took much longer than the mean interval between requests on a connection adds the samples an
open-loop client would have seen queued behind it. Its percentiles are therefore pessimistic
when a few requests stall for seconds; ``mean_uncorrected`` (Little's law) and the server's own
histogram (``bench.server_metrics``) show the requests as they were.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.processes import BenchError

SCRIPT = Path(__file__).resolve().parent / "lua" / "chat.lua"
MARK = "BENCH_JSON "


@dataclass(frozen=True)
class Load:
    connections: int
    threads: int
    duration_s: float
    warmup_s: float
    timeout_s: float = 10.0


def wrk_path() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk; ./dev setup installs it)")
    return path


def wrk_version() -> str:
    result = subprocess.run([wrk_path(), "-v"], capture_output=True, text=True)
    return (result.stdout or result.stderr).splitlines()[0].split(" [")[0] if (result.stdout or result.stderr) else ""


def run_wrk(url: str, mode: str, load: Load, duration_s: float, salt: str,
            extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """One wrk run; returns what the script's ``done()`` printed, with requests/s and errors added."""
    argv = [wrk_path(), f"-t{load.threads}", f"-c{load.connections}", f"-d{duration_s:g}s",
            f"--timeout={load.timeout_s:g}s", "-s", str(SCRIPT), url]
    env = {**os.environ, "BENCH_MODE": mode, "BENCH_SALT": salt, **(extra_env or {})}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=duration_s + 60)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith(MARK)), None)
    if result.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({result.returncode}):\n{result.stdout[-1500:]}\n{result.stderr[-1500:]}")
    stats: dict[str, Any] = json.loads(line[len(MARK):])
    errors: dict[str, int] = stats["errors"]
    duration, requests = float(stats["duration_s"]), int(stats["requests"])
    stats["requests_per_s"] = round(requests / duration, 1) if duration else 0.0
    # Each connection always has one request outstanding, so by Little's law the mean latency
    # requests actually had is connections / throughput: wrk's own figures include its correction.
    stats["latency_ms"]["mean_uncorrected"] = round(1000 * load.connections * duration / requests, 2) if requests else 0
    stats["non_2xx"] = errors["status"]
    stats["socket_errors"] = sum(v for k, v in errors.items() if k != "status")
    stats["error_count"] = sum(errors.values())
    return stats
