"""A CLI change is in effect on the running server when the command returns.

Everything runs for real: `appliance serve` as a subprocess, the CLI as subprocesses, two mock
upstreams as processes. After a command commits its change it asks the server on the same node
(over the node's Unix control socket) to reload, and says whether it did.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import Node
from tests.desk.helpers import Console, add_user, user_cli
from tests.engine.harness import call, chat, new_token, running, upstreams

APPLIED = "applied by the running server"
NO_SERVER = "no server running: takes effect when it starts"


def test_model_use_is_in_effect_when_it_returns_50_times_in_a_row(node: Node, tmp_path: Path) -> None:
    with upstreams(tmp_path, "up1", "up2") as (up1, up2), running(node) as server:
        up1.add_to(node)
        up2.add_to(node)
        admin = new_token(node, "admin", "ops")
        for turn in range(50):
            name = "up1" if turn % 2 == 0 else "up2"
            used = node.cli("model", "use", name)
            assert APPLIED in used.stderr, used.stderr
            answer = chat(server, f"Question number {turn} about parcels")
            assert answer["reply"]["source"] == "llm", answer
            status, body = call(server.url, "GET", f"/api/v1/admin/traces/{answer['trace_id']}", token=admin)
            assert status == 200, body
            assert body["route"] == name, (turn, body["route"])
        assert (up1.requests, up2.requests) == (25, 25)


def _doc(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "text", "question"), [
    ("warranty.md", "# Zephyrine warranty\n\nEvery Zephyrine kettle has a warranty of seven years.\n",
     "How long is the Zephyrine warranty?"),
    ("保修.md", "# 泽菲林保修\n\n泽菲林电水壶享有七年保修服务。\n", "泽菲林电水壶保修多久？"),
], ids=["en", "zh"])
def test_a_document_added_is_found_by_the_next_question(node: Node, tmp_path: Path, name: str, text: str,
                                                        question: str) -> None:
    with upstreams(tmp_path, "llm") as (llm,), running(node) as server:
        llm.add_to(node)
        node.cli("model", "use", "llm")
        before = chat(server, question)
        assert name not in [c["document"] for c in before["reply"]["citations"]], before
        added = node.cli("kb", "add", "--quiet", str(_doc(tmp_path / "docs", name, text)))
        assert APPLIED in added.stderr, added.stderr
        after = chat(server, question)
        cited = [c["document"] for c in after["reply"]["citations"]]
        assert any(name.removesuffix(".md") in d or d in text for d in cited), after
        removed = node.cli("kb", "remove", name)
        assert APPLIED in removed.stderr, removed.stderr
        gone = chat(server, question + " ")
        assert not any(name.removesuffix(".md") in c["document"] for c in gone["reply"]["citations"]), gone


def test_disabling_a_user_closes_their_open_console(node: Node) -> None:
    password = add_user(node, "amy")
    with running(node) as server:
        console = Console(server, "amy", password)
        with console.socket() as ws:
            disabled = user_cli(node, "disable", "amy")
            assert disabled.returncode == 0, disabled.stderr
            assert APPLIED in disabled.stderr, disabled.stderr
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401, closed.value
        status, _ = console.call("GET", "/api/v1/desk/conversations?filter=mine")
        assert status == 401


def test_the_message_says_whether_a_server_applied_it(node: Node) -> None:
    alone = node.cli("token", "create", "--role", "admin", "--name", "ops")
    assert alone.stderr.strip() == NO_SERVER
    assert "\n" not in alone.stdout.strip()  # the token alone on standard output, as before
    with running(node):
        served = node.cli("token", "create", "--role", "admin", "--name", "ops2")
        assert APPLIED in served.stderr, served.stderr
        assert (node.dir / "serve.json").is_file()
    assert not (node.dir / "serve.json").exists()  # a clean stop removes it
    added = node.cli("model", "add", "m", "--base-url", "http://127.0.0.1:9/v1", "--model", "m")
    assert added.stderr.strip() == NO_SERVER


def test_a_killed_or_frozen_server_neither_hangs_nor_misleads_the_cli(node: Node) -> None:
    with running(node) as server:
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGSTOP)  # alive, but it answers nobody
        try:
            frozen = node.cli("user", "add", "bob", "--role", "agent")
            assert frozen.returncode == 0, frozen.stderr
            assert f"warning: the running server (pid {server.proc.pid}) did not answer" in frozen.stderr
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.kill()  # SIGKILL: serve.json and the socket stay behind
        assert (node.dir / "serve.json").is_file()
        stale = node.cli("user", "capacity", "bob", "3")
        assert stale.stderr.strip() == NO_SERVER, stale.stderr
