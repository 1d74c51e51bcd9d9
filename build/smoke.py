"""Smoke test of the one-file build: ``dist/appliance`` works with no Python environment at all.

    python build/smoke.py [BINARY] [--starts N]

Runs the binary (default ``dist/appliance``) under ``env -i`` with only ``PATH=/usr/bin:/bin`` and
``HOME`` set to a fresh temporary folder, which is also the working directory: ``init`` a node,
``serve`` it on a free 127.0.0.1 port, wait for ``/readyz``, ``POST /api/v1/chat`` and expect a
200 whose ``reply.source`` is ``local_model`` with a non-empty text, fetch ``/schema/openapi.json``,
``token create --role admin --name smoke``, stop the server with SIGTERM and expect a clean exit.
The served process must map nothing from this repository (no ``.venv``, no source tree).

It measures the binary's size, the cold start to ``/readyz`` (the median of N starts, each
one unpacking the binary afresh), and the idle RSS after the first chat. A onefile binary runs
as two processes: the bootloader, which unpacks the bundle and waits, and its child, which
serves; the RSS reported is the child's (``VmRSS`` in ``/proc/PID/status``), the bootloader's is
printed beside it. The last line of output is the measurements as one JSON object.

Uses only the standard library; exits 1 with a one-line reason (and the server's log) on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 120.0
CHAT_TIMEOUT_S = 120.0
IDLE_SETTLE_S = 2.0
# Never through a proxy from the caller's environment: the server is on 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class SmokeFailure(Exception):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: object | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SmokeFailure(f"no VmRSS for pid {pid}")


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...; comm may contain spaces and parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def serving_pid(bootloader_pid: int) -> int:
    """The onefile bootloader's child (the process that serves); the pid itself if it has none."""
    kids = children(bootloader_pid)
    return kids[0] if len(kids) == 1 else bootloader_pid


class Sandbox:
    """A temporary HOME and working directory, and a clean environment to run the binary in."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.home = home
        self.env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}"]

    def run(self, *args: str, timeout: float = 120.0) -> str:
        proc = subprocess.run(
            [*self.env, str(self.binary), *args], cwd=self.home, capture_output=True, text=True,
            timeout=timeout, check=False,
        )
        if proc.returncode != 0:
            raise SmokeFailure(
                f"`appliance {' '.join(args)}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
            )
        return proc.stdout

    def serve(self, config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                [*self.env, str(self.binary), "--config", str(config), "serve", "--host", "127.0.0.1",
                 "--port", str(port)],
                cwd=self.home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> float:
    """Seconds from now until /readyz answers 200 (the caller starts the clock at spawn)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SmokeFailure(f"the server exited with status {proc.returncode} before it was ready\n"
                               + log.read_text(errors="replace")[-4000:])
        try:
            status, _ = http("GET", f"{base}/readyz", timeout=1.0)
            if status == 200:
                return time.monotonic()
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.02)
    raise SmokeFailure(f"/readyz not 200 after {READY_TIMEOUT_S:.0f}s\n" + log.read_text(errors="replace")[-4000:])


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM to the bootloader, which forwards it to the server; expect a clean exit."""
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise SmokeFailure("the server did not stop within 30s of SIGTERM") from None
    # uvicorn shuts down gracefully, then re-raises the signal it caught; the bootloader mirrors that.
    if code not in (0, -signal.SIGTERM):
        raise SmokeFailure(f"the server exited with status {code} on SIGTERM\n"
                           + log.read_text(errors="replace")[-4000:])


def repo_mappings(pid: int) -> list[str]:
    """Files from this repository (the venv, the sources) mapped by the process: there must be none."""
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    paths = {line.split(None, 5)[5] for line in maps if len(line.split(None, 5)) == 6}
    return sorted(p for p in paths if p.startswith(str(ROOT) + "/") and p != str(BINARY_IN_USE))


def extraction_dirs() -> set[str]:
    tmp = Path(tempfile.gettempdir())
    return {p.name for p in tmp.glob("_MEI*")} if tmp.is_dir() else set()


def smoke(binary: Path, starts: int) -> dict[str, object]:
    if not os.access(binary, os.X_OK):
        raise SmokeFailure(f"{binary} is missing or not executable: run build/build.sh")
    size_mb = binary.stat().st_size / 1e6
    print(f"binary: {binary} ({size_mb:.1f} MB)", flush=True)
    meis_before = extraction_dirs()

    with tempfile.TemporaryDirectory(prefix="appliance-smoke-") as tmp:
        home = Path(tmp)
        box = Sandbox(binary, home)
        started = time.monotonic()
        out = box.run("init", "node", "--name", "smoke")
        init_s = time.monotonic() - started
        config = home / "node" / "config.toml"
        if not config.is_file():
            raise SmokeFailure(f"init did not write {config}:\n{out}")
        print(f"init: ok ({init_s:.2f}s)", flush=True)

        log = home / "serve.log"
        ready_s: list[float] = []
        result: dict[str, object] = {}
        for attempt in range(starts):
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            t0 = time.monotonic()
            proc = box.serve(config, port, log)
            try:
                ready_s.append(wait_ready(base, proc, log) - t0)
                print(f"start {attempt + 1}: /readyz 200 after {ready_s[-1]:.2f}s", flush=True)
                if attempt == 0:
                    result = first_start_checks(box, base, proc, config)
            except BaseException:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                print("server log (tail):\n" + log.read_text(errors="replace")[-4000:], file=sys.stderr)
                raise
            stop(proc, log)
        print("stop: clean exit on SIGTERM", flush=True)

    leaked = extraction_dirs() - meis_before
    if leaked:
        print(f"warning: onefile extraction folders left behind in {tempfile.gettempdir()}: {sorted(leaked)}")
    return {
        "binary_mb": round(size_mb, 1),
        "cold_start_s": round(statistics.median(ready_s), 2),
        "cold_starts_s": [round(s, 2) for s in ready_s],
        **result,
        "init_s": round(init_s, 2),
    }


def first_start_checks(box: Sandbox, base: str, proc: subprocess.Popen[bytes], config: Path) -> dict[str, object]:
    t0 = time.monotonic()
    status, body = http("POST", f"{base}/api/v1/chat", {"text": "Hello, can you help me?"}, timeout=CHAT_TIMEOUT_S)
    chat_s = time.monotonic() - t0
    if status != 200:
        raise SmokeFailure(f"POST /api/v1/chat answered {status}: {body[:500]!r}")
    answer = json.loads(body)
    reply = answer.get("reply") or {}
    if reply.get("source") != "local_model" or not str(reply.get("text", "")).strip():
        raise SmokeFailure(f"expected a non-empty reply from local_model, got {answer!r}")
    print(f"chat: 200 from local_model in {chat_s:.2f}s: {reply['text'][:100]!r}", flush=True)

    status, body = http("GET", f"{base}/schema/openapi.json")
    if status != 200 or b'"/api/v1/chat"' not in body:
        raise SmokeFailure(f"GET /schema/openapi.json answered {status}: {body[:300]!r}")
    print("schema: ok", flush=True)

    time.sleep(IDLE_SETTLE_S)
    server = serving_pid(proc.pid)
    rss = vm_rss_mb(server)
    boot_rss = vm_rss_mb(proc.pid) if server != proc.pid else 0.0
    print(f"idle RSS after the first chat: {rss:.1f} MB (serving pid {server}; bootloader pid {proc.pid}: "
          f"{boot_rss:.1f} MB)", flush=True)
    mapped = repo_mappings(server)
    if mapped:
        raise SmokeFailure(f"the binary uses files from the repository: {mapped[:5]}")

    out = box.run("--config", str(config), "token", "create", "--role", "admin", "--name", "smoke")
    if not out.strip():
        raise SmokeFailure("token create printed nothing")
    print("token create: ok", flush=True)
    return {
        "idle_rss_mb": round(rss, 1),
        "bootloader_rss_mb": round(boot_rss, 1),
        "first_chat_s": round(chat_s, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("binary", nargs="?", type=Path, default=ROOT / "dist" / "appliance")
    parser.add_argument("--starts", type=int, default=3, help="server starts to time (median reported)")
    args = parser.parse_args()
    try:
        numbers = smoke(args.binary.resolve(), max(1, args.starts))
    except (SmokeFailure, subprocess.TimeoutExpired) as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"smoke: ok: {numbers['binary_mb']} MB, cold start to /readyz {numbers['cold_start_s']}s "
          f"(median of {len(numbers['cold_starts_s'])}), idle RSS {numbers['idle_rss_mb']} MB")
    print(json.dumps(numbers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
