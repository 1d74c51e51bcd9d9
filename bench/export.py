"""Conversation export at scale: peak memory of the server and of the CLI while exporting.

    .venv/bin/python -m bench.export [--messages 100000] [--per-conversation 10]

Makes a node with ``appliance init``, seeds it straight through the store (conversations of
English and Chinese messages with commas, quotes and line breaks, indexed for search as the
server indexes them), starts ``appliance serve`` and exports over HTTP (CSV and JSON lines),
then runs ``appliance export conversations`` into a file. For the server it reads VmRSS before
the export and VmHWM (the peak) after it; for the CLI the peak RSS (``ru_maxrss``) of the child.
The same is done for a tenth of the messages first: a streamed export's peak does not grow with
the number of messages. Prints one JSON object (last line).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from appliance.core import events as ev
from appliance.core.types import Message
from appliance.store import Store

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "appliance"]
ZH = ["我想申请退款", "信用卡丢了怎么办", "订单什么时候发货", "请帮我转人工", "发票抬头写错了"]
EN = ["Where is my parcel, order {n}?", 'The "express" option, is it free?', "Line one\nline two of {n}",
      "My card, the blue one, was declined", "Thanks, that fixed it"]


def seed(db: Path, messages: int, per_conversation: int, start: int = 0) -> None:
    rng = random.Random(start)
    store = Store.open(db, "bench-seed")
    try:
        batch: list[ev.EventPayload] = []
        for n in range(start, start + messages):
            cid = f"conv_bench_{n // per_conversation:07}"
            if n % per_conversation == 0:
                batch.append(ev.ConversationStarted(conversation_id=cid, visitor_id=f"v_{n}", language="en"))
            role = "visitor" if n % 2 == 0 else "bot"
            text = rng.choice(ZH if rng.random() < 0.4 else EN).format(n=n)
            batch.append(ev.MessageAdded(message=Message(id=f"msg_bench_{n:08}", conversation_id=cid, role=role,
                                                         text=text, source="" if role == "visitor" else "llm")))
            if len(batch) >= 1000:
                store.append_sync(*batch)
                batch = []
        if batch:
            store.append_sync(*batch)
    finally:
        store.close()


def _status_kb(pid: int, field: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) if found else 0


def _reset_peak(pid: int) -> None:
    with contextlib.suppress(OSError):  # Linux >= 4.0: writing 5 resets VmHWM to the current RSS
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def http_export(url: str, token: str, fmt: str, pid: int) -> dict[str, Any]:
    _reset_peak(pid)
    before = _status_kb(pid, "VmRSS")
    started = time.perf_counter()
    request = urllib.request.Request(f"{url}/api/v1/admin/conversations/export?format={fmt}",
                                     headers={"Authorization": f"Bearer {token}"})
    size = lines = 0
    with urllib.request.urlopen(request, timeout=600) as response:
        while chunk := response.read(1 << 16):
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    return {"format": fmt, "bytes": size, "lines": lines, "seconds": round(seconds, 2),
            "rss_before_mb": round(before / 1024, 1), "peak_mb": round(_status_kb(pid, "VmHWM") / 1024, 1)}


def cli_export(config: Path, out: Path) -> dict[str, Any]:
    started = time.perf_counter()
    with out.open("wb") as handle:
        proc = subprocess.Popen([*CLI, "--config", str(config), "export", "conversations", "--format", "csv"],
                                stdout=handle, stderr=subprocess.PIPE, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, proc.stderr.read() if proc.stderr else ""
    return {"bytes": out.stat().st_size, "seconds": round(time.perf_counter() - started, 2),
            "peak_mb": round(usage.ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--per-conversation", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "node"
        subprocess.run([*CLI, "init", str(directory)], check=True, capture_output=True, cwd=ROOT)
        config = directory / "config.toml"
        text = config.read_text().replace('builtin_chat = "standard"', 'builtin_chat = "small"')
        config.write_text(text.replace("port = 7443", "port = 0"))
        token = subprocess.run([*CLI, "--config", str(config), "token", "create", "--role", "admin", "--name",
                                "bench"], check=True, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        db = directory / "appliance.db"
        results: dict[str, Any] = {"messages": args.messages, "per_conversation": args.per_conversation, "runs": []}
        small = args.messages // 10
        for total, add in ((small, small), (args.messages, args.messages - small)):
            started = time.perf_counter()
            seed(db, add, args.per_conversation, start=total - add)
            seeded_s = time.perf_counter() - started
            port = _free_port()
            server = subprocess.Popen([*CLI, "--config", str(config), "serve", "--port", str(port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
            try:
                url = f"http://127.0.0.1:{port}"
                _wait_ready(url)
                run = {"messages": total, "seed_s": round(seeded_s, 1),
                       "http": [http_export(url, token, fmt, server.pid) for fmt in ("csv", "jsonl")],
                       "cli": cli_export(config, Path(tmp) / "export.csv")}
            finally:
                server.terminate()
                server.wait(timeout=30)
            print(json.dumps(run), file=sys.stderr)
            results["runs"].append(run)
    print(json.dumps(results))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server at {url} not ready after {timeout}s")


if __name__ == "__main__":
    main()
