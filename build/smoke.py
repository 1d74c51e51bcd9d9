"""Smoke test of the one-file build: ``dist/appliance`` works with no Python environment at all.

    python build/smoke.py [BINARY] [--starts N] [--tmpdir DIR]

Runs a copy of the binary (default ``dist/appliance``, with the ``models/`` folder beside it),
placed in a fresh temporary folder that is also ``HOME`` and the working directory, under
``env -i`` with only ``PATH=/usr/bin:/bin`` and ``HOME`` (and ``TMPDIR`` with ``--tmpdir``):
``init`` a node, ``kb add`` one page, ``serve`` it on a free 127.0.0.1 port, wait for
``/readyz``, ``POST /api/v1/chat`` and expect a 200 whose ``reply.source`` is ``local_model``
with the page's fact, chat once in Chinese over the ``/ws/visitor`` WebSocket (token frames,
then the reply), fetch ``/schema/openapi.json``, ``token create --role admin --name
smoke``, stop the server with SIGTERM and expect a clean exit that removes the folder the binary
unpacked itself into. The serving process must map nothing from this repository.

It measures the binary's size, the cold start to ``/readyz`` (the median of N starts, each one
unpacking the binary afresh), and the idle RSS after the first chat. A onefile binary runs as
two processes: the bootloader, which unpacks the bundle and waits, and its child, which serves;
the RSS reported is the child's (``VmRSS`` in ``/proc/PID/status``), the bootloader's is printed
beside it. The last line of output is the measurements as one JSON object.

Uses only the standard library; exits 1 with the reason (and the server's log) on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
SAVINGS = """# Savings

## Interest

The Saver account pays 3.1% interest a year on balances up to 50,000 USD, paid monthly.
Withdrawals are free and instant.
"""
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


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and its split (RssAnon: heap; RssFile: mapped files, the models among them), in MB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            found[key] = int(value.split()[0]) / 1024
    if "VmRSS" not in found:
        raise SmokeFailure(f"no VmRSS for pid {pid}")
    return found


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


def websocket_chat(port: int, text: str, timeout: float = CHAT_TIMEOUT_S) -> tuple[int, dict[str, object]]:
    """One chat over ``/ws/visitor`` with a minimal RFC 6455 client: (token frames seen, final frame).

    Proves that uvicorn's WebSocket protocol, which it picks by name at run time, is in the bundle.
    The message goes out as a binary frame (what the handler reads); replies are text frames.
    """
    import base64
    import struct

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        key = base64.b64encode(os.urandom(16)).decode()
        conn.sendall((f"GET /ws/visitor HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                     .encode())
        stream = conn.makefile("rb")
        status_line = stream.readline()
        if b" 101 " not in status_line:
            raise SmokeFailure(f"WebSocket upgrade refused: {status_line!r}")
        while stream.readline() not in (b"\r\n", b""):
            pass
        payload = json.dumps({"text": text}).encode()
        mask = os.urandom(4)
        if len(payload) < 126:  # FIN + binary opcode; masked, as every client frame must be
            header = struct.pack("!BB", 0x82, 0x80 | len(payload))
        else:
            header = struct.pack("!BBH", 0x82, 0x80 | 126, len(payload))
        conn.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        tokens = 0
        while True:
            first, second = stream.read(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", stream.read(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", stream.read(8))
            data = stream.read(length)
            if first & 0x0F == 0x8:
                raise SmokeFailure(f"the server closed the WebSocket: {data!r}")
            if first & 0x0F not in (0x1, 0x2):
                continue
            frame = json.loads(data)
            if frame.get("type") != "token":
                return tokens, frame
            tokens += 1


class Sandbox:
    """A temporary HOME and working directory, and a clean environment to run the binary in."""

    def __init__(self, binary: Path, home: Path, tmpdir: Path | None = None) -> None:
        self.binary = binary
        self.home = home
        self.env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={home}"]
        if tmpdir is not None:  # where the onefile bootloader unpacks itself (default /tmp)
            self.env.append(f"TMPDIR={tmpdir}")

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
    return sorted(p for p in paths if p.startswith(str(ROOT) + "/"))


def extraction_dir(pid: int) -> Path:
    """The folder the bootloader unpacked the bundle into (sys._MEIPASS of the serving process)."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[5].endswith("/libpython3.11.so.1.0"):
            return Path(fields[5]).parent
    raise SmokeFailure(f"cannot find the onefile extraction folder of pid {pid}")


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def smoke(binary: Path, starts: int, tmpdir: Path | None = None) -> dict[str, object]:
    if not os.access(binary, os.X_OK):
        raise SmokeFailure(f"{binary} is missing or not executable: run build/build.sh")
    size_mb = binary.stat().st_size / 1e6
    print(f"binary: {binary} ({size_mb:.1f} MB)", flush=True)

    with tempfile.TemporaryDirectory(prefix="appliance-smoke-") as tmp:
        home = Path(tmp)
        # Run a copy from the sandbox, so that nothing can reach back into the repository.
        copy = home / "bin" / "appliance"
        copy.parent.mkdir()
        shutil.copy2(binary, copy)
        if (beside := binary.parent / "models").is_dir():  # the standard chat model build.sh puts there
            shutil.copytree(beside, copy.parent / "models", copy_function=_link_or_copy)
        box = Sandbox(copy, home, tmpdir)
        started = time.monotonic()
        sync_port = free_udp_port()
        out = box.run("init", "node", "--name", "smoke", "--sync-port", str(sync_port))
        init_s = time.monotonic() - started
        config = home / "node" / "config.toml"
        if not config.is_file():
            raise SmokeFailure(f"init did not write {config}:\n{out}")
        print(f"init: ok ({init_s:.2f}s)", flush=True)
        # The built-in model answers from the knowledge base only (and says so when it has nothing).
        (home / "savings.md").write_text(SAVINGS, encoding="utf-8")
        added = box.run("--config", str(config), "kb", "add", str(home / "savings.md")).strip()
        print(f"kb add: ok ({added.splitlines()[-1] if added else 'no output'})", flush=True)

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
                unpacked = extraction_dir(serving_pid(proc.pid))
                print(f"start {attempt + 1}: /readyz 200 after {ready_s[-1]:.2f}s (unpacked in {unpacked})",
                      flush=True)
                if attempt == 0:
                    result = first_start_checks(box, base, proc, config)
                    desk_checks(base, out)
                    sync_checks(box, config, sync_port)
            except BaseException:
                if proc.poll() is None:
                    # SIGTERM first: a SIGKILLed bootloader leaves its extraction folder in /tmp.
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                print("server log (tail):\n" + log.read_text(errors="replace")[-4000:], file=sys.stderr)
                raise
            stop(proc, log)
            if unpacked.exists():
                raise SmokeFailure(f"the bootloader left its extraction folder {unpacked} behind")
        print("stop: clean exit on SIGTERM, extraction folders removed", flush=True)
    return {
        "binary_mb": round(size_mb, 1),
        "cold_start_s": round(statistics.median(ready_s), 2),
        "cold_starts_s": [round(s, 2) for s in ready_s],
        **result,
        "init_s": round(init_s, 2),
    }


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sync_checks(box: Sandbox, config: Path, sync_port: int) -> None:
    """The binary carries replication: its node id, and the running server listening on its UDP port."""
    node_id = box.run("--config", str(config), "node", "id").strip()
    if not re.fullmatch(r"[0-9a-f]{64}", node_id):
        raise SmokeFailure(f"node id printed {node_id!r}")
    deadline = time.monotonic() + 10
    while True:
        status = json.loads(box.run("--config", str(config), "sync", "status", "--json"))
        if status.get("server_running") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if not str(status.get("listening", "")).endswith(f":{sync_port}"):
        raise SmokeFailure(f"sync status does not show the server listening on udp {sync_port}: {status!r}")
    print(f"sync: node {node_id[:16]}…, listening on udp {status['listening']}", flush=True)


def first_start_checks(box: Sandbox, base: str, proc: subprocess.Popen[bytes], config: Path) -> dict[str, object]:
    t0 = time.monotonic()
    question = {"text": "What interest does the savings account pay?"}  # no intent answers it: the model does
    status, body = http("POST", f"{base}/api/v1/chat", question, timeout=CHAT_TIMEOUT_S)
    chat_s = time.monotonic() - t0
    if status != 200:
        raise SmokeFailure(f"POST /api/v1/chat answered {status}: {body[:500]!r}")
    answer = json.loads(body)
    reply = answer.get("reply") or {}
    if reply.get("source") != "local_model" or "3.1" not in str(reply.get("text", "")):
        raise SmokeFailure(f"expected the savings rate (3.1 %) from local_model, got {answer!r}")
    print(f"chat: 200 from local_model in {chat_s:.2f}s: {reply['text'][:100]!r}", flush=True)

    time.sleep(IDLE_SETTLE_S)
    server = serving_pid(proc.pid)
    if server == proc.pid:
        raise SmokeFailure(f"expected the onefile bootloader (pid {proc.pid}) to have one child, the server")
    mem = memory_mb(server)
    rss = mem["VmRSS"]
    boot_rss = memory_mb(proc.pid)["VmRSS"]
    print(f"idle RSS after the first chat: {rss:.1f} MB (anon {mem.get('RssAnon', 0):.1f}, file "
          f"{mem.get('RssFile', 0):.1f}) in the serving process {server}; bootloader {proc.pid}: {boot_rss:.1f} MB",
          flush=True)

    tokens, frame = websocket_chat(int(base.rsplit(":", 1)[1]), "储蓄账户的利率是多少？")
    if frame.get("type") != "reply" or not tokens:
        raise SmokeFailure(f"expected token frames then a reply on /ws/visitor, got {tokens} tokens and {frame!r}")
    print(f"websocket: {tokens} token frames, then the reply", flush=True)

    status, body = http("GET", f"{base}/schema/openapi.json")
    if status != 200 or b'"/api/v1/chat"' not in body:
        raise SmokeFailure(f"GET /schema/openapi.json answered {status}: {body[:300]!r}")
    print("schema: ok", flush=True)

    mapped = repo_mappings(server)
    if mapped:
        raise SmokeFailure(f"the binary uses files from the repository: {mapped[:5]}")

    out = box.run("--config", str(config), "token", "create", "--role", "admin", "--name", "smoke")
    if not out.strip():
        raise SmokeFailure("token create printed nothing")
    print("token create: ok", flush=True)
    return {
        "idle_rss_mb": round(rss, 1),
        "idle_rss_anon_mb": round(mem.get("RssAnon", 0), 1),
        "idle_rss_file_mb": round(mem.get("RssFile", 0), 1),
        "bootloader_rss_mb": round(boot_rss, 1),
        "first_chat_s": round(chat_s, 2),
    }


def desk_checks(base: str, init_output: str) -> None:
    """The pages a person opens come from inside the binary, and init's admin signs in."""
    for path, marker in [("/chat", b"<html"), ("/console", b"<html"), ("/widget.js", b"iframe"),
                         ("/static/console/console.js", b"import")]:
        status, body = http("GET", f"{base}{path}")
        if status != 200 or marker not in body:
            raise SmokeFailure(f"GET {path} answered {status}: {body[:200]!r}")
    print("pages: /chat, /console, /widget.js and static assets served", flush=True)
    match = re.search(r"admin account: (\S+)  password: (\S+)", init_output)
    if match is None:
        raise SmokeFailure(f"init printed no admin password:\n{init_output}")
    status, body = http("POST", f"{base}/api/v1/auth/login", {"username": match[1], "password": match[2]})
    if status != 200 or b"csrf_token" not in body:
        raise SmokeFailure(f"the admin from init could not sign in: {status} {body[:300]!r}")
    print("sign-in: the admin printed by init signs in", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("binary", nargs="?", type=Path, default=ROOT / "dist" / "appliance")
    parser.add_argument("--starts", type=int, default=3, help="server starts to time (median reported)")
    parser.add_argument("--tmpdir", type=Path, default=None,
                        help="also pass TMPDIR=DIR, where the binary unpacks itself (default: none, so /tmp)")
    args = parser.parse_args()
    try:
        numbers = smoke(args.binary.resolve(), max(1, args.starts), args.tmpdir)
    except (SmokeFailure, subprocess.TimeoutExpired) as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"smoke: ok: {numbers['binary_mb']} MB, cold start to /readyz {numbers['cold_start_s']}s "
          f"(median of {len(numbers['cold_starts_s'])}), idle RSS {numbers['idle_rss_mb']} MB")
    print(json.dumps(numbers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
