"""Memory under hostile input: oversized chunked uploads, oversized WebSocket frames, deep JSON.

    .venv/bin/python -m bench.hostile [--clients 20] [--upload-mb 60] [--frame-mb 15]

Starts a fresh node (``appliance init`` + ``serve``, shipped limits), records its idle RSS, then
in three rounds has ``--clients`` clients at once (1) stream a chunked upload of
``--upload-mb`` MB each, (2) send one WebSocket text frame of ``--frame-mb`` MB each, (3) post
100,000 nested ``[`` to /api/v1/chat; it samples the server's RSS every 50 ms and prints, per
round, the answers the clients got and the peak RSS. The server must answer 413 / close 1009 /
400 and stay within a few MB of idle. Prints one JSON object (last line).
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bench.processes import Appliance, ResourceSampler, rss_mb


def chunked_upload(port: int, megabytes: int, token: str) -> str:
    piece = b"\x89PNG" + b"\x00" * (65536 - 4)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"POST /api/v1/attachments HTTP/1.1\r\nHost: bench\r\nContent-Type: image/png\r\n"
                     b"Authorization: Bearer " + token.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(megabytes * 16):
                sock.sendall(chunk)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # refused mid-stream: the answer is already there
        try:
            return sock.recv(64).split(b" ", 2)[1].decode()
        except (OSError, IndexError):
            return "closed"


def big_frame(port: int, megabytes: int) -> str:
    try:
        with connect(f"ws://127.0.0.1:{port}/ws/visitor", open_timeout=30, max_size=None) as ws:
            try:
                ws.send("x" * (megabytes * 1_000_000))
                ws.recv(timeout=30)
            except ConnectionClosed as closed:
                return str(closed.rcvd.code if closed.rcvd else "closed")
            return "answered"
    except (OSError, ConnectionClosed) as exc:
        return type(exc).__name__


def deep_json(port: int) -> str:
    body = b"[" * 100_000
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"POST /api/v1/chat HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        return sock.recv(64).split(b" ", 2)[1].decode()


def visitor_token(url: str) -> str:
    import urllib.request

    request = urllib.request.Request(f"{url}/api/v1/conversations/handoff", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        token: str = json.loads(response.read())["visitor_token"]
        return token


def round_of(name: str, pid: int, clients: int, work: Any) -> dict[str, Any]:
    with ResourceSampler(pid, {}, interval=0.05) as sampler, ThreadPoolExecutor(clients) as pool:
        started = time.monotonic()
        answers = Counter(pool.map(lambda _: work(), range(clients)))
        seconds = time.monotonic() - started
    result = {"round": name, "answers": dict(answers), "peak_rss_mb": round(sampler.peak_mb, 1),
              "seconds": round(seconds, 2)}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--upload-mb", type=int, default=60)
    parser.add_argument("--frame-mb", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as work:
        app = Appliance(Path(work))
        app.init()
        app.serve()
        try:
            pid = app.pid
            tokens = [visitor_token(app.url) for _ in range(args.clients)]
            time.sleep(1)
            idle = rss_mb(pid)
            print(json.dumps({"idle_rss_mb": round(idle, 1)}), flush=True)
            rounds = [
                round_of("chunked uploads", pid, args.clients,
                         lambda: chunked_upload(app.port, args.upload_mb, tokens.pop())),
                round_of("oversized websocket frames", pid, args.clients, lambda: big_frame(app.port, args.frame_mb)),
                round_of("deeply nested JSON", pid, args.clients, lambda: deep_json(app.port)),
            ]
            alive = rss_mb(pid) > 0
        finally:
            app.stop()
    print(json.dumps({"clients": args.clients, "upload_mb": args.upload_mb, "frame_mb": args.frame_mb,
                      "idle_rss_mb": round(idle, 1), "rounds": rounds, "server_alive": alive,
                      "max_growth_mb": round(max(r["peak_rss_mb"] for r in rounds) - idle, 1)}))


if __name__ == "__main__":
    main()
