"""Live model routing from the CLI and the admin API, against a running `appliance serve`.

The CLI writes the routing table into the node's database; the running server picks the change
up within about a second, with no restart. Every change is audited in a hash chain.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pysqlite3.dbapi2 as sqlite3

from tests.conftest import Node
from tests.engine.harness import (
    call,
    chat,
    models,
    new_token,
    one_line_error,
    running,
    trace,
    upstreams,
    wait_for,
    wait_routing,
)


def _roles(listing: str) -> dict[str, str]:
    """``appliance model list`` → {model name: role column}."""
    roles = {}
    for line in listing.splitlines()[1:]:
        if line.startswith("no active model"):
            continue
        name, rest = line[:20].strip(), line[21:35].strip()
        roles[name] = rest
    return roles


def test_model_commands_steer_the_running_server(node: Node, tmp_path: Path) -> None:
    with upstreams(tmp_path, "up1", "up2") as (up1, up2), running(node) as server:
        admin = new_token(node, "admin", "ops")
        up1.add_to(node)
        up2.add_to(node)
        assert _roles(node.cli("model", "list").stdout) == {"up1": "", "up2": ""}

        node.cli("model", "use", "up1")
        wait_routing(server, admin, "model use up1", active="up1")
        first = chat(server, "How do I reset my password?")
        assert first["reply"]["source"] == "llm", first
        assert first["reply"]["text"] == "Mock answer about: How do I reset my password?"
        assert (up1.requests, up2.requests) == (1, 0)

        node.cli("model", "use", "up2")
        wait_routing(server, admin, "model use up2", active="up2")
        second = chat(server, "Where is my parcel?")
        assert second["reply"]["source"] == "llm"
        assert (up1.requests, up2.requests) == (1, 1)
        # A conversation that started on up1 continues on the model now active.
        chat(server, "And can I change the address?", first)
        assert (up1.requests, up2.requests) == (1, 2)
        assert _roles(node.cli("model", "list").stdout) == {"up1": "", "up2": "active"}

        node.cli("model", "canary", "up1", "--percent", "30")
        wait_routing(server, admin, "the canary", canary="up1", canary_percent=30.0)
        assert _roles(node.cli("model", "list").stdout) == {"up1": "canary 30%", "up2": "active"}

        node.cli("model", "promote")
        wait_routing(server, admin, "promote", active="up1", canary=None)
        before = up1.requests
        assert chat(server, "Do you ship to Norway?")["reply"]["source"] == "llm"
        assert up1.requests == before + 1

        node.cli("model", "rollback")
        wait_routing(server, admin, "rollback", active="up2", canary=None)
        before = up2.requests
        assert chat(server, "What does shipping cost?")["reply"]["source"] == "llm"
        assert up2.requests == before + 1

        # With up1 as fallback, a failing up2 no longer reaches the visitor.
        node.cli("model", "fallback", "up1")
        wait_routing(server, admin, "the fallback order", fallback=["up1"])
        assert _roles(node.cli("model", "list").stdout) == {"up1": "fallback 1", "up2": "active"}
        up2.set(mode="error")
        before = up1.requests
        rescued = chat(server, "Is the shop open on Sunday?")
        assert rescued["reply"]["source"] == "llm", rescued
        assert up1.requests == before + 1
        attempts = trace(server, admin, rescued["trace_id"])["attempts"]
        hops = [(a["provider"], a["status"], a["error_kind"]) for a in attempts]
        assert hops[0] == ("up2", "error", "server_error"), hops
        assert hops[-1] == ("up1", "ok", ""), hops


def test_bad_model_commands_exit_2_with_one_line_and_change_nothing(node: Node, tmp_path: Path) -> None:
    with upstreams(tmp_path, "up1") as (up1,), running(node) as server:
        admin = new_token(node, "admin", "ops")
        up1.add_to(node)
        up1.add_to(node, name="spare")
        node.cli("model", "use", "up1")
        listing = node.cli("model", "list").stdout
        cases = [
            (("model", "use", "nope"), "nope"),
            (("model", "canary", "spare", "--percent", "150"), "percent"),
            (("model", "canary", "nope", "--percent", "10"), "nope"),
            (("model", "add", "bad", "--base-url", "ftp://10.0.0.5/v1", "--model", "m"), "base-url"),
            (("model", "add", "bad", "--base-url", "not a url", "--model", "m"), "base-url"),
            (("model", "fallback", "ghost"), "ghost"),
            (("model", "promote",), "canary"),
        ]
        for args, words in cases:
            result = node.cli(*args, check=False)
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            line = one_line_error(result.stderr)
            assert words in line, (args, line)
        assert node.cli("model", "list").stdout == listing
        wait_routing(server, admin, "model use up1", active="up1")
        assert chat(server, "How do I close my account?")["reply"]["source"] == "llm"


def test_admin_api_routes_models_and_the_audit_chain_shows_tampering(node: Node, tmp_path: Path) -> None:
    with upstreams(tmp_path, "up1", "up2") as (up1, up2), running(node) as server:
        admin = new_token(node, "admin", "ops")
        agent = new_token(node, "agent", "alice")
        base = "/api/v1/admin/models"
        for mock in (up1, up2):
            status, table = call(server.url, "POST", base, {"name": mock.name, "base_url": mock.url,
                                                            "model": f"{mock.name}-model"}, token=admin)
            assert status == 200, table
        assert set(table["models"]) == {"up1", "up2"}

        status, table = call(server.url, "POST", f"{base}/use", {"name": "up1"}, token=admin)
        assert status == 200 and table["active"] == "up1", table
        # The admin API applies at once: the very next chat goes to up1.
        assert chat(server, "Can I pay by invoice?")["reply"]["source"] == "llm"
        assert (up1.requests, up2.requests) == (1, 0)
        status, table = call(server.url, "POST", f"{base}/use", {"name": "up2"}, token=admin)
        assert status == 200 and table["active"] == "up2"
        assert chat(server, "Can I pay by card?")["reply"]["source"] == "llm"
        assert (up1.requests, up2.requests) == (1, 1)

        status, table = call(server.url, "POST", f"{base}/canary", {"name": "up1", "percent": 25}, token=admin)
        assert status == 200 and (table["canary"], table["canary_percent"]) == ("up1", 25.0), table
        status, table = call(server.url, "POST", f"{base}/rollback", token=admin)
        assert status == 200 and table["canary"] is None and table["active"] == "up2", table
        status, table = call(server.url, "POST", f"{base}/fallback", {"names": ["up1"]}, token=admin)
        assert status == 200 and table["fallback"] == ["up1"], table

        bad: list[tuple[str, str, dict[str, Any], int]] = [
            ("POST", f"{base}/use", {"name": "nope"}, 404),
            ("POST", f"{base}/canary", {"name": "up1", "percent": 150}, 400),
            ("POST", f"{base}/canary", {"name": "nope", "percent": 10}, 404),
            ("POST", base, {"name": "bad", "base_url": "ftp://10.0.0.5/v1", "model": "m"}, 400),
            ("POST", f"{base}/fallback", {"names": ["ghost"]}, 404),
        ]
        for method, path, body, expected in bad:
            status, answer = call(server.url, method, path, body, token=admin)
            assert status == expected, (path, body, answer)
            assert answer["status"] == expected and answer["message"], answer

        status, answer = call(server.url, "GET", base, token=agent)
        assert status == 403, answer
        status, answer = call(server.url, "POST", f"{base}/use", {"name": "up1"}, token=agent)
        assert status == 403, answer
        assert call(server.url, "GET", base)[0] == 401
        assert call(server.url, "GET", base, token="not-a-token")[0] == 401
        assert models(server, admin)["table"]["active"] == "up2"  # nothing the agent did stuck

        listing = node.cli("audit", "list").stdout
        assert "admin:ops" in listing and "model.use" in listing, listing

    verified = node.cli("audit", "verify")
    assert "chain intact" in verified.stdout, verified.stdout

    db = sqlite3.connect(str(node.dir / "appliance.db"))
    try:
        origin, seq = db.execute(
            "SELECT origin, seq FROM audit WHERE action = 'model.use' ORDER BY seq LIMIT 1").fetchone()
        with db:
            db.execute("UPDATE audit SET detail = 'up2' WHERE origin = ? AND seq = ?", (origin, seq))
    finally:
        db.close()

    result = node.cli("audit", "verify", check=False)
    assert result.returncode == 1, (result.stdout, result.stderr)
    tampered = [line for line in result.stdout.splitlines() if line.startswith("TAMPERED")]
    assert len(tampered) == 1, result.stdout
    assert f"{origin[:12]}#{seq}" in tampered[0], tampered
    assert "chain BROKEN" in result.stdout


def test_a_turn_in_flight_finishes_on_the_model_it_started_with(node: Node, tmp_path: Path) -> None:
    with upstreams(tmp_path, "up1", "up2") as (up1, up2), running(node) as server:
        admin = new_token(node, "admin", "ops")
        up1.set(latency_ms=2500)
        up1.add_to(node)
        up2.add_to(node)
        node.cli("model", "use", "up1")
        wait_routing(server, admin, "model use up1", active="up1")
        with ThreadPoolExecutor(max_workers=1) as pool:
            slow = pool.submit(chat, server, "Can I change my delivery date?")
            wait_for(lambda: up1.requests == 1, "the slow turn to reach up1")
            node.cli("model", "use", "up2")
            node.cli("model", "remove", "up1")
            wait_for(lambda: set(models(server, admin)["table"]["models"]) == {"up2"}, "up1's removal")
            assert models(server, admin)["table"]["active"] == "up2"
            assert chat(server, "Is it raining?")["reply"]["source"] == "llm"
            assert (up1.requests, up2.requests) == (1, 1)
            answer = slow.result(timeout=30)
        assert answer["reply"]["source"] == "llm", answer
        assert answer["reply"]["text"] == "Mock answer about: Can I change my delivery date?"
        finished = trace(server, admin, answer["trace_id"])
        assert (finished["route"], [a["provider"] for a in finished["attempts"]]) == ("up1", ["up1"]), finished
