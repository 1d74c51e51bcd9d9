"""Two sites as the README sets them up: `appliance init --sync-port`, `node id`, `pair add` on
both sides, `appliance serve` on each. What a visitor, an admin and a model switch do at one site
shows up at the other; kill -9 loses nothing; `sync status` tells the truth; an unpaired node
gets nothing. Real processes, real QUIC on loopback."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, Node, Server, init_node, run_cli
from tests.desk.helpers import Console, chat, next_frame, request, resume, visitor_socket
from tests.engine.harness import wait_for
from tests.sync.helpers import free_udp_port


def site(root: Path, name: str) -> tuple[Node, int]:
    port = free_udp_port()
    # Accounts replicate, and a name is one account on every paired node: each site's first
    # admin gets its own name, as the README says.
    node = init_node(root / name, "--name", name, "--admin", f"{name}-admin", "--sync-port", str(port))
    node.edit_config('host = "0.0.0.0"', 'host = "127.0.0.1"')
    return node, port


def cli(node: Node, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run_cli("--config", str(node.config), *args, check=check)


def pair(a: tuple[Node, int], b: tuple[Node, int]) -> None:
    (node_a, port_a), (node_b, port_b) = a, b
    human_b = cli(node_b, "node", "id", "--human").stdout.strip()
    id_a = cli(node_a, "node", "id").stdout.strip()
    assert len(id_a) == 64 and human_b.count("-") == 7
    added = cli(node_a, "pair", "add", human_b, f"127.0.0.1:{port_b}", "--name", node_b.dir.name)
    assert "paired with" in added.stdout
    cli(node_b, "pair", "add", id_a, f"127.0.0.1:{port_a}", "--name", node_a.dir.name)


def status(node: Node) -> dict[str, Any]:
    return dict(json.loads(cli(node, "sync", "status", "--json").stdout))


def wait_until(check, timeout: float = 30.0, what: str = "") -> Any:  # type: ignore[no-untyped-def]
    return wait_for(check, what, timeout, every=0.25)


def inbox(server: Server, token: str) -> list[dict[str, Any]]:
    code, body, _ = request(server, "GET", "/api/v1/desk/conversations?filter=open&limit=200",
                            headers={"Authorization": f"Bearer {token}"})
    assert code == 200, body
    return list(body["conversations"])


def test_two_sites_replicate_conversations_documents_and_model_switches(tmp_path: Path) -> None:
    a, b = site(tmp_path, "site-a"), site(tmp_path, "site-b")
    pair(a, b)
    token_b = cli(b[0], "token", "create", "--role", "admin", "--name", "reports").stdout.strip()
    server_a, server_b = Server(a[0]).start(wait_ready=False), Server(b[0]).start(wait_ready=False)
    try:
        server_a.wait_ready()
        server_b.wait_ready()
        # A Chinese and an English visitor at site A appear in site B's inbox.
        zh = chat(server_a, "你好，我想问一下营业时间")
        en = chat(server_a, "Hello, what are your opening hours?")
        found = wait_until(lambda: {c["id"] for c in inbox(server_b, token_b)} >= {zh["conversation_id"],
                                                                                    en["conversation_id"]},
                           what="site A's conversations in site B's inbox")
        assert found
        # A knowledge document added at site B is searchable at site A.
        doc = tmp_path / "hours.md"
        doc.write_text("# 营业时间\n\n周末营业时间为 10:00-16:00。Weekend hours are 10:00-16:00.\n", encoding="utf-8")
        cli(b[0], "kb", "add", str(doc))
        wait_until(lambda: "hours.md" in cli(a[0], "kb", "list").stdout, what="site B's document at site A")
        # A model switch at site A reaches site B's running router.
        cli(a[0], "model", "add", "gpt-site", "--base-url", "http://127.0.0.1:9/v1", "--model", "gpt-x")
        cli(a[0], "model", "use", "gpt-site")
        wait_until(lambda: request(server_b, "GET", "/api/v1/admin/models",
                                   headers={"Authorization": f"Bearer {token_b}"})[1]["table"]["active"] == "gpt-site",
                   what="site A's model switch in site B's running router")
        state = wait_until(lambda: (s := status(a[0]))["peers"][0]["connected"] and s, what="status connected")
        assert state["server_running"] and state["peers"][0]["name"] == "site-b"
        wait_until(lambda: status(a[0])["peers"][0]["backlog"] == 0, what="backlog drained")
        # kill -9 of site B, a visitor at site A meanwhile, restart: nothing lost.
        server_b.kill()
        later = chat(server_a, "我的信用卡丢了怎么办")
        down = wait_until(lambda: not (s := status(a[0]))["peers"][0]["connected"] and s, timeout=40,
                          what="status disconnected (after [sync] idle_timeout_s)")
        assert down["peers"][0]["backlog"] >= 1
        server_b.start()
        wait_until(lambda: later["conversation_id"] in {c["id"] for c in inbox(server_b, token_b)},
                   what="the conversation written while site B was down")
        wait_until(lambda: status(a[0])["peers"][0]["backlog"] == 0, what="backlog drained after restart")
        code, api, _ = request(server_b, "GET", "/api/v1/admin/sync", headers={"Authorization": f"Bearer {token_b}"})
        assert code == 200 and api["peers"][0]["name"] == "site-a" and api["peers"][0]["connected"]
        text = cli(a[0], "sync", "status").stdout
        assert "site-b" in text and "connected" in text and "backlog 0 events" in text
    finally:
        server_a.stop()
        server_b.stop()
    for node in (a[0], b[0]):
        with sqlite3.connect(node.dir / "appliance.db") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_agent_at_one_site_answers_a_visitor_connected_to_the_other(tmp_path: Path) -> None:
    """A Chinese visitor chats at site A; an agent signed in at site B sees the conversation
    arrive live, takes it over and replies; the reply reaches the visitor's open chat at A."""
    a, b = site(tmp_path, "site-a"), site(tmp_path, "site-b")
    pair(a, b)
    server_a, server_b = Server(a[0]).start(wait_ready=False), Server(b[0]).start(wait_ready=False)
    try:
        server_a.wait_ready()
        server_b.wait_ready()
        agent = Console(server_b, "site-b-admin", b[0].admin_password)
        with agent.socket() as desk_feed, visitor_socket(server_a) as ws:
            visitor = chat(server_a, "我想找人工客服，信用卡被盗刷了")
            resume(ws, visitor)
            cid = visitor["conversation_id"]
            arrived = next_frame(desk_feed, lambda f: f["type"] == "conversation"
                                 and f["conversation"]["id"] == cid, "the conversation at site B", timeout=20)
            assert arrived["conversation"]["subject"].startswith("我想找人工客服")
            code, body = agent.desk("POST", f"/{cid}/take")
            assert code == 200, body
            code, body = agent.desk("POST", f"/{cid}/reply", {"text": "您好，我是 B 站点的客服，马上为您冻结卡片。"})
            assert code == 200, body
            shown = next_frame(ws, lambda f: f["type"] == "message" and f["message"]["role"] == "agent",
                               "the agent's reply in the visitor's chat at site A", timeout=20)
            assert shown["message"]["text"] == "您好，我是 B 站点的客服，马上为您冻结卡片。"
    finally:
        server_a.stop()
        server_b.stop()


def test_a_model_switched_at_both_sites_while_apart_ends_the_same_and_the_loser_is_listed(tmp_path: Path) -> None:
    a, b = site(tmp_path, "site-a"), site(tmp_path, "site-b")
    pair(a, b)
    for node, model in ((a[0], "model-a"), (b[0], "model-b")):  # both sites' servers are down
        cli(node, "model", "add", model, "--base-url", "http://127.0.0.1:9/v1", "--model", model)
        cli(node, "model", "use", model)
    assert "no conflicts" in cli(a[0], "sync", "conflicts").stdout
    server_a, server_b = Server(a[0]).start(wait_ready=False), Server(b[0]).start(wait_ready=False)
    try:
        server_a.wait_ready()
        server_b.wait_ready()
        wait_until(lambda: status(a[0])["peers"][0]["backlog"] == 0 and status(b[0])["peers"][0]["backlog"] == 0,
                   what="both backlogs drained")
    finally:
        server_a.stop()
        server_b.stop()
    tables = [cli(n, "model", "list").stdout for n in (a[0], b[0])]
    assert tables[0] == tables[1] and "model-b" in tables[0]  # b's switch came later: it won at both
    listed = cli(a[0], "sync", "conflicts").stdout + cli(b[0], "sync", "conflicts").stdout
    assert "settings routing: the change from" in listed and "lost to" in listed
    lines = [json.loads(line) for line in cli(a[0], "sync", "conflicts", "--json").stdout.splitlines()]
    assert all("lost" in line or "collision" in line for line in lines)


def test_unpaired_node_gets_nothing_and_is_counted(tmp_path: Path) -> None:
    a, stranger = site(tmp_path, "site-a"), site(tmp_path, "stranger")
    id_a = cli(a[0], "node", "id").stdout.strip()
    cli(stranger[0], "pair", "add", id_a, f"127.0.0.1:{a[1]}")  # a never pairs back
    server_a, server_s = Server(a[0]).start(), Server(stranger[0]).start()
    try:
        chat(server_a, "hello")
        wait_until(lambda: status(a[0])["refused"].get("not-paired", 0) >= 1, what="refusal counted")
        seen = status(stranger[0])["peers"][0]
        assert not seen["connected"] and "not-paired" in seen["last_error"]
        assert "appliance_sync_refused_total" in request(server_a, "GET", "/metrics")[1]
    finally:
        server_a.stop()
        server_s.stop()
    with sqlite3.connect(stranger[0].dir / "appliance.db") as conn:
        origins = {r[0] for r in conn.execute("SELECT DISTINCT origin FROM events")}
    assert id_a not in origins


def test_pair_commands_explain_bad_input(tmp_path: Path) -> None:
    a = site(tmp_path, "site-a")
    own = cli(a[0], "node", "id").stdout.strip()
    wrong = cli(a[0], "pair", "add", "not-an-id", "127.0.0.1:7443", check=False)
    assert wrong.returncode == 2 and "is not a node id" in wrong.stderr and "Traceback" not in wrong.stderr
    human = cli(a[0], "node", "id", "--human").stdout.strip()
    typo = human[:3] + ("A" if human[3] != "A" else "B") + human[4:]
    mistyped = cli(a[0], "pair", "add", typo, "127.0.0.1:7443", check=False)
    assert mistyped.returncode == 2 and "check characters" in mistyped.stderr
    itself = cli(a[0], "pair", "add", own, "127.0.0.1:7443", check=False)
    assert itself.returncode == 2 and "own id" in itself.stderr
    other = "ab" * 32
    no_port = cli(a[0], "pair", "add", other, "127.0.0.1", check=False)
    assert no_port.returncode == 2 and "HOST:PORT" in no_port.stderr
    cli(a[0], "pair", "add", other, "10.0.0.2:7443", "--name", "dc2")
    assert "dc2" in cli(a[0], "pair", "list").stdout
    assert "unpaired dc2" in cli(a[0], "pair", "remove", "dc2").stdout
    assert "no paired nodes" in cli(a[0], "pair", "list").stdout
    gone = cli(a[0], "pair", "remove", "dc2", check=False)
    assert gone.returncode == 2 and "no paired node" in gone.stderr


class SyncProcess:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.node.dir / "sync.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.sync.sync_process", str(self.node.config)],
                                     stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=dict(os.environ))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=15)


@pytest.mark.slow
def test_sigkill_mid_transfer_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    from appliance.core import events as ev
    from appliance.node import NodeIdentity
    from appliance.store import Store
    from tests.sync import workload
    from tests.sync.helpers import digest, table_digests

    a, b = site(tmp_path, "site-a"), site(tmp_path, "site-b")
    pair(a, b)
    store = Store.open(a[0].dir / "appliance.db", NodeIdentity.load(a[0].dir).node_id)
    for i in range(0, 6000, 3):  # about 20k events: conversations of a visitor and two replies
        workload.conversation(store, f"question {i} 我的信用卡丢了")
    store.append_sync(ev.SettingChanged(key="last", value=b"written"))
    store.close()
    sender, receiver = SyncProcess(a[0]), SyncProcess(b[0])
    rng = random.Random(3)

    def received() -> int:
        with sqlite3.connect(f"file:{b[0].dir / 'appliance.db'}?mode=ro", uri=True) as conn:
            try:
                return int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    def held(node: Node) -> dict[str, int]:
        with sqlite3.connect(f"file:{node.dir / 'appliance.db'}?mode=ro", uri=True) as conn:
            return dict(conn.execute("SELECT origin, max(seq) FROM events GROUP BY origin").fetchall())

    try:
        sender.start()
        receiver.start()
        for victim in ["receiver", "sender", "both", "receiver", "both", "sender"]:
            time.sleep(rng.uniform(0.8, 2.0))
            for name, proc in (("sender", sender), ("receiver", receiver)):
                if victim in (name, "both"):
                    proc.kill()
            time.sleep(0.2)
            for name, proc in (("sender", sender), ("receiver", receiver)):
                if victim in (name, "both"):
                    proc.start()
        wait_until(lambda: received() >= 6000, timeout=120, what="every message at site B")
        wait_until(lambda: held(a[0]) == held(b[0]), timeout=30, what="both sites holding the same events")
    finally:
        sender.stop()
        receiver.stop()
    stores = [Store.open(n.dir / "appliance.db", NodeIdentity.load(n.dir).node_id) for n in (a[0], b[0])]
    try:
        tables = [table_digests(s) for s in stores]
        assert digest(stores[0]) == digest(stores[1]), [t for t in tables[0] if tables[0][t] != tables[1][t]]
        assert stores[1].read_sync(lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0]) == 6000
        for s in stores:
            assert s.read_sync(lambda c: c.execute("PRAGMA integrity_check").fetchone()[0]) == "ok"
    finally:
        for s in stores:
            s.close()
