"""The processes a benchmark run owns: the mock upstream, the appliance, the peer gateway.

Each is started with its output in a log file in the run's work directory, and stopped (SIGTERM,
then SIGKILL) when the run ends, whatever happened. Memory and CPU of a process are read from
``/proc/PID``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
APPLIANCE = [PYTHON, "-m", "appliance"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A step of the benchmark could not run; the message says which and why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_json(url: str, body: object | None = None, timeout: float = 5.0, token: str | None = None
              ) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


class Process:
    """A child process with its output in ``log``."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.name, self.log = name, log
        with log.open("ab") as handle:
            self.proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
                                         env={**os.environ, **(env or {})}, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_http(self, url: str, timeout: float) -> None:
        """Wait until ``url`` answers 200; fail with the log's tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if http_json(url, timeout=2)[0] == 200:
                    return
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer {url} within {timeout:.0f}s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the process group (a gateway's workers too), SIGKILL it after 10 s."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass


def start_mock(workdir: Path, latency_ms: float) -> tuple[Process, str]:
    """The mock OpenAI-compatible upstream; returns it and its base URL (``.../v1``)."""
    port = free_port()
    mock = Process("mock upstream", [PYTHON, "-m", "bench.mock_upstream", "--port", str(port),
                                     "--latency-ms", f"{latency_ms:g}"], workdir / "mock.log")
    mock.wait_http(f"http://127.0.0.1:{port}/_stats", timeout=30)
    return mock, f"http://127.0.0.1:{port}/v1"


def set_mock(base_url: str, **behaviour: object) -> None:
    status, _ = http_json(base_url.removesuffix("/v1") + "/_control", behaviour)
    if status != 200:
        raise BenchError(f"mock upstream refused {behaviour}: HTTP {status}")


class Appliance:
    """A fresh node made with ``appliance init``, served with ``appliance serve`` on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "node"
        self.config = self.dir / "config.toml"
        self.db = self.dir / "appliance.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "appliance.log"
        self.server: Process | None = None
        self.cli_seconds: dict[str, float] = {}

    def cli(self, *args: str, timeout: float = 1800) -> str:
        started = time.monotonic()
        argv = [*APPLIANCE, "--config", str(self.config), *args] if args[0] != "init" else [*APPLIANCE, *args]
        result = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
        self.cli_seconds[" ".join(args[:2])] = round(time.monotonic() - started, 2)
        if result.returncode != 0:
            raise BenchError(f"appliance {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
        return result.stdout

    def has_command(self, name: str) -> bool:
        result = subprocess.run([*APPLIANCE, "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60)
        return re.search(rf"^\s+{re.escape(name)}\s", result.stdout, re.MULTILINE) is not None

    def init(self) -> None:
        self.cli("init", str(self.dir), "--port", str(self.port))
        # The load comes from one address at rates no visitor reaches: the rate limits are off here
        # (bench/limits.py measures them).
        text = self.config.read_text()
        head, _, tail = text.partition("[limits]")
        section, sep, rest = tail.partition("\n[")
        section = re.sub(r"^(\w+_per_\w+) = \d+", r"\1 = 0", section, flags=re.MULTILINE)
        self.config.write_text(head + "[limits]" + section + sep + rest)

    def serve(self, timeout: float = 120) -> None:
        self.server = Process("appliance", [*APPLIANCE, "--config", str(self.config), "serve",
                                            "--port", str(self.port)], self.log)
        self.server.wait_http(f"{self.url}/readyz", timeout)

    def use_model(self, mock_url: str) -> None:
        """Add the mock as model ``up`` (with vision) and make it active, with the real CLI.

        Best before ``serve``: a node that starts with no active model loads the built-in chat
        model at once (it would answer every turn), which the memory figures would then include.
        """
        self.cli("model", "add", "up", "--base-url", mock_url, "--model", "m", "--vision")
        self.cli("model", "use", "up")
        if self.server is None:
            return
        time.sleep(1.5)  # the server applies routing changes within about a second
        status, _ = http_json(f"{self.url}/readyz")
        if status != 200:
            raise BenchError(f"/readyz answered {status} after the model switch")

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def rss_mb(pid: int) -> float:
    """Resident set size of one process, in MiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


def descendants(pid: int) -> list[int]:
    """The process and all its descendants (a gateway's worker processes)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                queue += [int(child) for child in task.read_text().split()]
    return found


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine, all cores, from /proc/stat (idle and iowait left out)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


class ResourceSampler:
    """While active: samples the RSS of ``pid`` every ``interval`` seconds and keeps the peak, and
    accounts for CPU: each watched process tree, wrk (this process's children that exit meanwhile),
    the whole machine, and what is left, ``other``: processes that aren't part of the benchmark.
    CPU figures are percent of one core (a busy 2-core machine shows 200)."""

    def __init__(self, pid: int, watch: dict[str, int], interval: float = 0.1) -> None:
        self.pid, self.watch, self.interval = pid, watch, interval
        self.peak_mb = 0.0
        self.cpu: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start: dict[str, float] = {}

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            self._stop.wait(self.interval)

    def _cpu_now(self) -> dict[str, float]:
        now = {name: sum(cpu_seconds(p) for p in descendants(pid)) for name, pid in self.watch.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        own = resource.getrusage(resource.RUSAGE_SELF)
        now["wrk"] = children.ru_utime + children.ru_stime
        now["bench"] = own.ru_utime + own.ru_stime
        now["machine"] = machine_cpu_seconds()
        now["wall"] = time.monotonic()
        return now

    def __enter__(self) -> ResourceSampler:
        self._start = self._cpu_now()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
        end = self._cpu_now()
        wall = end.pop("wall") - self._start["wall"]
        used = {name: 100 * (end[name] - self._start[name]) / wall for name in end}
        ours = sum(v for name, v in used.items() if name != "machine")
        self.cpu = {name: round(v, 1) for name, v in used.items()}
        self.cpu["other"] = round(max(0.0, used["machine"] - ours), 1)
