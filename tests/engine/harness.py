"""What the end-to-end engine tests share: the mock upstream and redis as processes, a JSON client.

The only fake is the mock OpenAI-compatible upstream (it stands for a remote LLM provider); it
runs as its own process (``python -m bench.mock_upstream``) and is steered and read over HTTP
(``/_control``, ``/_stats``), exactly as an operator's load test would.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tests.conftest import ROOT, Node, Server, free_port

T = TypeVar("T")


def call(url: str, method: str, path: str, body: bytes | dict[str, Any] | None = None, *,
         token: str | None = None, headers: dict[str, str] | None = None,
         timeout: float = 60) -> tuple[int, Any]:
    """One HTTP request; returns (status, decoded JSON or text). Never raises for 4xx/5xx."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{url}{path}", data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw.decode(errors="replace")


def chat(server: Server, text: str, conversation: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A visitor message; continues ``conversation`` (a previous answer) when given. Asserts 200."""
    body: dict[str, Any] = {"text": text, **extra}
    if conversation is not None:
        body["conversation_id"] = conversation["conversation_id"]
        body["visitor_token"] = conversation["visitor_token"]
    status, answer = call(server.url, "POST", "/api/v1/chat", body)
    assert status == 200, answer
    return dict(answer)


def trace(server: Server, token: str, trace_id: str) -> dict[str, Any]:
    status, body = call(server.url, "GET", f"/api/v1/admin/traces/{trace_id}", token=token)
    assert status == 200, body
    return dict(body)


def models(server: Server, token: str) -> dict[str, Any]:
    status, body = call(server.url, "GET", "/api/v1/admin/models", token=token)
    assert status == 200, body
    return dict(body)


def scrape(server: Server) -> dict[str, float]:
    """``/metrics`` as {'name{labels}': value}."""
    status, text = call(server.url, "GET", "/metrics")
    assert status == 200, text
    samples = {}
    for line in str(text).splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            samples[series] = float(value)
    return samples


def new_token(node: Node, role: str, name: str) -> str:
    token = node.cli("token", "create", "--role", role, "--name", name).stdout.strip()
    assert token and "\n" not in token, token
    return token


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 10.0, every: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {result!r})")
        time.sleep(every)


def wait_routing(server: Server, token: str, what: str, **expected: Any) -> dict[str, Any]:
    """Wait until the running server's routing table has ``expected`` values (it polls the store
    once a second), e.g. ``active="up2", canary=None``."""

    def applied() -> dict[str, Any] | None:
        table = models(server, token)["table"]
        return table if all(table.get(k) == v for k, v in expected.items()) else None

    return wait_for(applied, f"the server to apply {what}", timeout=8)


def parallel(work: Callable[[int], T], count: int, workers: int) -> list[T]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(work, range(count)))


class Upstream:
    """The mock OpenAI-compatible upstream (``bench.mock_upstream``) in its own process."""

    def __init__(self, log_dir: Path, name: str, **behaviour: Any) -> None:
        self.name = name
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.root}/v1"
        self._log = (log_dir / f"mock-{name}-{self.port}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.mock_upstream", "--port", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        wait_for(self._up, f"mock upstream {name} on port {self.port}", timeout=20)
        if behaviour:
            self.set(**behaviour)

    def _up(self) -> bool:
        assert self.proc.poll() is None, f"mock {self.name} exited {self.proc.returncode}"
        try:
            return call(self.root, "GET", "/_stats", timeout=2)[0] == 200
        except OSError:
            return False

    def set(self, **behaviour: Any) -> None:
        status, body = call(self.root, "POST", "/_control", behaviour)
        assert status == 200, body

    def stats(self) -> dict[str, Any]:
        status, body = call(self.root, "GET", "/_stats")
        assert status == 200, body
        return dict(body)

    @property
    def requests(self) -> int:
        return int(self.stats()["requests"])

    def reset(self) -> None:
        assert call(self.root, "POST", "/_reset")[0] == 200

    def add_to(self, node: Node, *extra: str, name: str | None = None) -> None:
        """``appliance model add`` for this mock, under its name (or ``name``)."""
        node.cli("model", "add", name or self.name, "--kind", "openai", "--base-url", self.url,
                 "--model", f"{self.name}-model", *extra)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextmanager
def upstreams(log_dir: Path, *names: str, **behaviour: Any) -> Iterator[list[Upstream]]:
    started: list[Upstream] = []
    try:
        for name in names:
            started.append(Upstream(log_dir, name, **behaviour))
        yield started
    finally:
        for mock in started:
            mock.stop()


@contextmanager
def running(node: Node) -> Iterator[Server]:
    server = Server(node).start()
    try:
        yield server
    finally:
        server.stop()


class RedisServer:
    """A real ``redis-server`` on a free loopback port, with no persistence, in ``directory``."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, f"redis-server on port {self.port}", timeout=10)

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=2)

    def ping(self) -> bool:
        import redis

        assert self.proc.poll() is None, f"redis-server exited {self.proc.returncode}"
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def one_line_error(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    assert re.match(r"appliance: error: \S", lines[0]), lines[0]
    return lines[0]
