"""Shared fixtures: real nodes created with the real CLI, real servers on 127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # makes `bench` importable

CLI = [sys.executable, "-m", "appliance"]


def run_cli(*args: str, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})}, cwd=ROOT)
    if check and result.returncode != 0:
        raise AssertionError(f"appliance {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def max_in_window(times: list[float], window: float) -> int:
    """The most events that fall in any window of ``window`` seconds (for rate-limit checks)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Node:
    def __init__(self, directory: Path, admin_password: str) -> None:
        self.dir = directory
        self.config = directory / "config.toml"
        self.admin_password = admin_password

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run_cli("--config", str(self.config), *args, check=check)

    def edit_config(self, old: str, new: str) -> None:
        text = self.config.read_text()
        assert old in text, old
        self.config.write_text(text.replace(old, new, 1))


def init_node(directory: Path, *extra: str) -> Node:
    result = run_cli("init", str(directory), *extra)
    password = re.search(r"password: (\S+)", result.stdout)
    assert password, result.stdout
    node = Node(directory, password.group(1))
    # Every test client is 127.0.0.1: the per-address limits would count a whole test's
    # visitors as one. tests/web/test_limits.py puts them back where they are the subject.
    for limit in PER_ADDRESS_LIMITS:
        node.edit_config(f"{limit} = ", f"{limit} = 1000000 # ")
    # Most tests are about the engine's mechanics, which the small built-in model exercises in a
    # fraction of the time; tests/engine/test_builtin_answers.py judges what the standard one says.
    node.edit_config('builtin_chat = "standard"', 'builtin_chat = "small"')
    # Sync listens only where a test pairs nodes (tests/sync/ pass --sync-port), not on one
    # fixed port for all.
    if "--sync-port" not in extra:
        node.edit_config("port = 7443", "port = 0")
    return node


PER_ADDRESS_LIMITS = ("chat_per_ip_per_minute", "new_conversations_per_ip_per_hour", "uploads_per_ip_per_hour",
                      "tickets_per_ip_per_hour")


class Server:
    """``appliance serve`` in a subprocess, on a free loopback port."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = node.dir / f"server-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait_ready: bool = True) -> Server:
        handle = self.log.open("ab")
        self.proc = subprocess.Popen(
            [*CLI, "--config", str(self.node.config), "serve", "--port", str(self.port)],
            stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
        )
        if wait_ready:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.log.read_text()}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Node:
    node = init_node(tmp_path_factory.mktemp("shared") / "node")
    # A generous turn budget: the built-in model must answer even on a busy test machine.
    node.edit_config("turn_budget_s = 8.0", "turn_budget_s = 60.0")
    return node


@pytest.fixture(scope="session")
def shared_server(shared_node: Node) -> Iterator[Server]:
    server = Server(shared_node).start()
    yield server
    server.stop()


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return init_node(tmp_path / "node")
