"""Signed webhooks from a real ``appliance serve`` to a real HTTP receiver.

The receiver (a thread on 127.0.0.1) checks every request as the README tells a receiver to:
both signatures against the secret, a timestamp within five minutes, the delivery id header the
same as the body's ``id``. Events come from real conversation activity (a visitor chats, asks
for a person, an admin takes over and closes, the visitor rates); failures come from a receiver
that is not listening, and durability from SIGKILL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CLI, ROOT, Node, Server, free_port
from tests.desk.helpers import Console, chat, handoff, make_node, request, wait_for
from tests.engine.harness import scrape

SECRET = "s3cret-for-the-receiver-0123"
FAST_RETRIES = {"retry_base_s = 10.0": "retry_base_s = 0.3", "retry_max_s = 3600.0": "retry_max_s = 1.0",
                "poll_s = 0.5": "poll_s = 0.1"}


class Receiver:
    """A webhook receiver that verifies what it is sent; ``start``/``stop`` on one fixed port."""

    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.received: list[dict[str, Any]] = []
        self.bad: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    def _check(self, headers: Any, raw: bytes) -> str:
        mac = hmac.new(self.secret, raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("X-Appliance-Signature", ""), f"sha256={mac}"):
            return "body signature"
        stamp = headers.get("X-Appliance-Timestamp", "")
        timed = hmac.new(self.secret, stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("X-Appliance-Timestamp-Signature", ""), f"sha256={timed}"):
            return "timestamp signature"
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            return f"timestamp {stamp!r}"
        body = json.loads(raw)
        if headers.get("X-Appliance-Delivery") != body["id"] or headers.get("X-Appliance-Event") != body["event"]:
            return "delivery or event header"
        return ""

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                problem = receiver._check(self.headers, raw)
                with receiver._lock:
                    if problem:
                        receiver.bad.append(problem)
                    else:
                        receiver.received.append(json.loads(raw))
                self.send_response(401 if problem else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [b for b in self.received if b["event"] == name]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(SECRET)
    yield found
    found.stop()


def webhook_cli(node: Node, *args: str, stdin: str | None = None) -> Any:
    import subprocess

    return subprocess.run([*CLI, "--config", str(node.config), "webhook", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def deliveries(node: Node) -> list[dict[str, Any]]:
    result = webhook_cli(node, "deliveries", "--limit", "1000", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_every_event_of_a_real_conversation_arrives_signed(tmp_path: Path, receiver: Receiver) -> None:
    receiver.start()
    node = make_node(tmp_path / "node", **FAST_RETRIES)
    server = Server(node).start()
    try:
        admin = Console(server, "admin", node.admin_password)
        status, created = admin.call("POST", "/api/v1/admin/webhooks", {
            "url": receiver.url, "events": ["message.created", "conversation.created", "conversation.status_changed",
                                            "conversation.assigned", "csat.submitted"], "secret": SECRET})
        assert status == 201, created
        assert created["secret"] == SECRET
        status, listed = admin.call("GET", "/api/v1/admin/webhooks")
        assert status == 200 and [w["url"] for w in listed["webhooks"]] == [receiver.url], listed
        assert SECRET not in json.dumps(listed)  # shown once, at creation

        visitor = chat(server, "Do you ship to Canada?")
        cid = visitor["conversation_id"]
        handoff(server, visitor)
        assert admin.desk("POST", f"/{cid}/take")[0] == 200
        assert admin.desk("POST", f"/{cid}/close")[0] == 200
        status, rated, _ = request(server, "POST", f"/api/v1/conversations/{cid}/rating",
                                   {"score": 4, "comment": "很好"},
                                   headers={"Authorization": f"Bearer {visitor['visitor_token']}"})
        assert status == 200, rated

        wait_for(lambda: receiver.events("csat.submitted"), "the rating's webhook", timeout=20)
        assert not receiver.bad, receiver.bad
        [created_event] = receiver.events("conversation.created")
        assert created_event["data"]["conversation_id"] == cid and created_event["node"]
        texts = {(b["data"]["message"]["role"], b["data"]["message"]["text"])
                 for b in receiver.events("message.created")}
        assert ("visitor", "Do you ship to Canada?") in texts
        assert any(role == "bot" and text for role, text in texts), texts
        statuses = [(b["data"]["status"], b["data"]["owner"]) for b in receiver.events("conversation.status_changed")]
        assert ("open", "queue") in statuses and ("open", "agent:admin") in statuses and statuses[-1][0] == "closed"
        assert [b["data"]["assignee"] for b in receiver.events("conversation.assigned")] == ["admin"]
        [csat] = receiver.events("csat.submitted")
        assert (csat["data"]["conversation_id"], csat["data"]["rating"], csat["data"]["comment"]) == (cid, 4, "很好")
        ids = [b["id"] for b in receiver.received]
        assert len(ids) == len(set(ids))  # each delivery once while nothing fails

        log = wait_for(lambda: (d := deliveries(node)) and all(x["status"] == "delivered" for x in d) and d,
                       "every delivery marked delivered")
        # What arrived is in the log, and the log's deliveries arrived (a late event may come between reads).
        assert set(ids) <= {d["id"] for d in log} <= {b["id"] for b in receiver.received}
        assert all(d["log"][0]["status_code"] == 204 for d in log)

        status, test = admin.call("POST", f"/api/v1/admin/webhooks/{created['webhook']['id']}/test")
        assert status == 202, test
        wait_for(lambda: receiver.events("webhook.test"), "the test event")
        status, removed = admin.call("DELETE", f"/api/v1/admin/webhooks/{created['webhook']['id']}")
        assert status == 200, removed
        status, audit = admin.call("GET", "/api/v1/admin/audit?limit=20")
        actions = [r["action"] for r in audit["records"]]
        assert {"webhook.add", "webhook.test", "webhook.remove"} <= set(actions), actions
        assert SECRET not in json.dumps(audit)
        assert SECRET not in server.log.read_text()
    finally:
        server.stop()


def test_a_receiver_that_is_down_gets_every_delivery_after_retries_and_a_sigkill(
        tmp_path: Path, receiver: Receiver) -> None:
    node = make_node(tmp_path / "node", **FAST_RETRIES)
    added = webhook_cli(node, "add", receiver.url, "--events", "message.created,conversation.created",
                        "--secret-stdin", stdin=SECRET + "\n")
    assert added.returncode == 0, added.stderr
    assert SECRET not in added.stdout and "secret" not in added.stdout
    server = Server(node).start()
    try:
        for text in ("first question", "second question"):
            chat(server, text)

        def retried() -> list[dict[str, Any]] | None:
            log = deliveries(node)
            return log if len(log) >= 6 and all(d["attempts"] >= 2 for d in log) else None

        log = wait_for(retried, "deliveries retried while the receiver is down", timeout=30)
        assert all(d["status"] == "pending" and d["last_status"] == 0 and d["last_error"] for d in log), log
        assert all(len(d["log"]) == d["attempts"] for d in log)
        assert scrape(server)["appliance_webhook_backlog"] >= 6
        server.kill()  # SIGKILL, deliveries pending
        pending = {d["id"] for d in deliveries(node) if d["status"] == "pending"}
        assert len(pending) >= 6

        receiver.start()
        server = Server(node).start()
        wait_for(lambda: all(d["status"] == "delivered" for d in deliveries(node)), "delivery after the restart",
                 timeout=30)
        assert not receiver.bad, receiver.bad
        got = [b["id"] for b in receiver.received]
        assert pending <= set(got)  # none lost
        assert len(got) == len(set(got))  # nothing sent twice: no attempt was in flight at the kill
        texts = {b["data"]["message"]["text"] for b in receiver.events("message.created")}
        assert {"first question", "second question"} <= texts
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cli_node(tmp_path_factory: pytest.TempPathFactory) -> Node:
    return make_node(tmp_path_factory.mktemp("cli") / "node")


@pytest.mark.parametrize(("args", "says"), [
    (("add", "ftp://example.com/h", "--events", "message.created"), "must start with http:// or https://"),
    (("add", "https://", "--events", "message.created"), "has no host"),
    (("add", "https://example.com/h", "--events", "message.created,order.paid"), "unknown webhook event order.paid"),
    (("add", "https://example.com/h", "--events", "message.created", "--secret", "short"), "at least 16 characters"),
    (("remove", "wh_nope"), "no webhook with id or URL 'wh_nope'"),
    (("deliveries", "--limit", "0"), "--limit must be between 1 and 1000"),
])
def test_cli_refuses_bad_input_in_one_line(cli_node: Node, args: tuple[str, ...], says: str) -> None:
    result = webhook_cli(cli_node, *args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr


def test_api_refuses_bad_webhooks_with_a_clear_4xx(tmp_path: Path) -> None:
    node = make_node(tmp_path / "node")
    server = Server(node).start()
    try:
        admin = Console(server, "admin", node.admin_password)
        for body, says in [({"url": "javascript:alert(1)", "events": ["message.created"]}, "http:// or https://"),
                           ({"url": "https://example.com", "events": ["nope"]}, "unknown webhook event nope"),
                           ({"url": "https://example.com", "events": []}, "at least one event")]:
            status, answer = admin.call("POST", "/api/v1/admin/webhooks", body)
            assert status == 400 and says in answer["message"], (body, status, answer)
        status, answer = admin.call("DELETE", "/api/v1/admin/webhooks/wh_nope")
        assert status == 404, answer
        status, made = admin.call("POST", "/api/v1/admin/webhooks", {"url": "https://example.com/h",
                                                                     "events": ["csat.submitted"]})
        assert status == 201 and made["secret"].startswith("whsec_"), made  # generated, shown once
        listed = webhook_cli(node, "list")
        assert "https://example.com/h" in listed.stdout and made["secret"] not in listed.stdout
    finally:
        server.stop()
