"""Privacy operations through a real server and the real CLI: a visitor's data exported, then
erased so that nothing of it is left in any table, column, full-text index, logged event or in
the database files themselves, while another visitor's data stays; retention erases what is
older than ``privacy.retention_days`` (the CLI, and the running server at start); every
operation is in the audit log, whose chain still verifies.

Two visitors write unique markers, one in English and one in Chinese, everywhere a visitor
(or an agent about them) can put text: the pre-chat profile, chat messages answered by a model
(the mock upstream echoes the question, so the answer and the L3 answer cache hold the marker
too), an uploaded image, an agent's reply and private note, a left message and its answer, a
rating comment and a thumbs-up.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.store.db import connect
from tests.conftest import Node, Server
from tests.desk.helpers import chat, make_node, request, starting, wait_for
from tests.engine.harness import Upstream, new_token
from tests.engine.test_images import png

DAY_MS = 86_400_000


class Desk:
    def __init__(self, node: Node, server: Server, admin: str, agent: str) -> None:
        self.node, self.server, self.admin, self.agent = node, server, admin, agent

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, token: str | None = None
             ) -> tuple[int, Any]:
        status, answer, _ = request(self.server, method, path, body,
                                    headers={"Authorization": f"Bearer {token or self.admin}"})
        return status, answer


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    base = tmp_path_factory.mktemp("privacy")
    node = make_node(base / "node")
    echo = Upstream(base, "echo")
    try:
        echo.add_to(node)
        node.cli("model", "use", "echo")
        admin, agent = new_token(node, "admin", "root"), new_token(node, "agent", "ann")
        with starting(node) as server:
            server.wait_ready()
            yield Desk(node, server, admin, agent)
    finally:
        echo.stop()


def visit(desk: Desk, language: str, marker: str, colour: int) -> dict[str, Any]:
    """A visitor who leaves ``marker`` everywhere they can; returns what identifies it all."""
    server = desk.server
    question = f"where is my parcel {marker}?" if language == "en" else f"我的包裹{marker}在哪里？"
    first = chat(server, question, profile={"name": f"{marker} Lee", "email": f"{marker}@example.com"},
                 language=language)
    assert marker in first["reply"]["text"], first  # the mock model echoes the question
    token, cid = first["visitor_token"], first["conversation_id"]
    auth = {"Authorization": f"Bearer {token}"}
    status, thumbs, _ = request(server, "POST", f"/api/v1/messages/{first['message_id']}/feedback", {"rating": "up"},
                                headers=auth)
    assert status == 200, thumbs

    image = png(4 + colour, 3)
    status, uploaded, _ = request(server, "POST", "/api/v1/attachments", image,
                                  headers={**auth, "Content-Type": "image/png"})
    assert status == 201, uploaded
    with urllib.request.urlopen(urllib.request.Request(
            f"{server.url}/api/v1/attachments/{uploaded['attachment_id']}", headers=auth), timeout=30) as got:
        stored_image = got.read()
    # An image for a model without vision: the conversation goes to the desk.
    photo = chat(server, f"photo of {marker}", first, attachments=[uploaded["attachment_id"]])
    assert photo["owner"] == "human", photo

    status, ticket, _ = request(server, "POST", "/api/v1/tickets", {
        "name": f"{marker} Lee", "contact": f"{marker}@example.com", "message": f"call me about {marker}",
        "conversation_id": cid, "visitor_token": token, "language": language})
    assert status == 201, ticket
    for action, body in [("take", None), ("reply", {"text": f"we found {marker}"}),
                         ("note", {"text": f"{marker} is a regular"})]:
        status, answer = desk.call("POST", f"/api/v1/desk/conversations/{cid}/{action}", body)
        assert status == 200, (action, answer)
    status, answer = desk.call("POST", f"/api/v1/desk/tickets/{ticket['ticket_id']}/answer",
                               {"text": f"answered {marker}"})
    assert status == 200, answer
    status, answer = desk.call("POST", f"/api/v1/desk/conversations/{cid}/close")
    assert status == 200, answer
    status, rated, _ = request(server, "POST", f"/api/v1/conversations/{cid}/rating",
                               {"score": 5, "comment": f"thanks {marker}"}, headers=auth)
    assert status == 200, rated
    detail = desk.call("GET", f"/api/v1/desk/conversations/{cid}")[1]
    return {"marker": marker, "token": token, "conversation_id": cid, "visitor_id": detail["visitor"]["visitor_id"],
            "ticket_id": ticket["ticket_id"], "attachment_id": uploaded["attachment_id"], "image": stored_image}


def history(desk: Desk, visitor: dict[str, Any]) -> tuple[int, Any]:
    status, body, _ = request(desk.server, "GET", f"/api/v1/conversations/{visitor['conversation_id']}/messages",
                              headers={"Authorization": f"Bearer {visitor['token']}"})
    return status, body


def traces_of(node: Node, needles: list[bytes]) -> list[str]:
    """Where any of ``needles`` is found: every column of every row of every table (FTS shadow
    tables and the event log's payload bytes included), every full-text index by MATCH, and the
    bytes of the database file and its write-ahead log."""
    path = node.dir / "appliance.db"
    conn = connect(path, readonly=True)
    found: list[str] = []
    try:
        tables = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        for name, sql in tables:
            for row in conn.execute(f'SELECT * FROM "{name}"'):
                for value in row:
                    raw = value if isinstance(value, bytes) else str(value).encode()
                    found += [f"{name}: {_shown(needle)} in {raw[:120]!r}" for needle in needles if needle in raw]
            if "USING fts5" in (sql or ""):
                for text in [n.decode() for n in needles if not n.startswith(b"\x89PNG")]:
                    hits = conn.execute(f'SELECT count(*) FROM "{name}" WHERE "{name}" MATCH ?',
                                        (json.dumps(text),)).fetchone()[0]
                    found += [f"{name} MATCH {text!r}: {hits}"] if hits else []
    finally:
        conn.close()
    for file in (path, path.with_name(path.name + "-wal")):
        data = file.read_bytes() if file.exists() else b""
        found += [f"{file.name}: {_shown(needle)} in the file bytes" for needle in needles if needle in data]
    return found


def _shown(needle: bytes) -> str:
    return repr(needle.decode()) if not needle.startswith(b"\x89PNG") else f"the uploaded image ({len(needle)} bytes)"


def needles(visitor: dict[str, Any]) -> list[bytes]:
    return [visitor["marker"].encode(), visitor["image"]]


def export(desk: Desk, visitor_id: str) -> dict[str, Any]:
    result = desk.node.cli("visitor", "export", visitor_id)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def make_old(node: Node, conversation_id: str, days: int) -> None:
    """Last activity ``days`` ago: the materialized row's hybrid clock, written as an old node would."""
    old = (time.time_ns() // 1_000_000 - days * DAY_MS) << 16
    conn = connect(node.dir / "appliance.db")
    try:
        conn.execute("UPDATE conversations SET updated_hlc = ?, started_hlc = ? WHERE id = ?",
                     (old, old, conversation_id))
    finally:
        conn.close()


def test_export_then_erase_leaves_no_trace_and_keeps_the_other_visitor(desk: Desk) -> None:
    english, chinese = visit(desk, "en", "zebra-4711", 0), visit(desk, "zh", "斑马四七一一", 1)
    assert any("reply_cache" in where for where in traces_of(desk.node, [english["marker"].encode()]))

    # Export: by HTTP (admin) and by the CLI; both hold everything the visitor left.
    status, exported = desk.call("GET", f"/api/v1/admin/visitors/{english['visitor_id']}/export")
    assert status == 200, exported
    assert exported == {**export(desk, english["visitor_id"]), "exported_ms": exported["exported_ms"]}
    (conversation,) = exported["conversations"]
    assert conversation["profile"]["name"] == "zebra-4711 Lee" and conversation["rating"] == 5
    texts = [m["text"] for m in conversation["messages"]]
    assert "where is my parcel zebra-4711?" in texts and "zebra-4711 is a regular" in texts, texts
    assert exported["tickets"][0]["contact"] == "zebra-4711@example.com", exported["tickets"]
    assert exported["attachments"] == [{"attachment_id": english["attachment_id"], "media_type": "image/png",
                                        "size": len(english["image"])}]
    zh = export(desk, chinese["visitor_id"])
    assert "我的包裹斑马四七一一在哪里？" in [m["text"] for m in zh["conversations"][0]["messages"]]

    # Only an admin may; an unknown visitor is a 404.
    assert desk.call("DELETE", f"/api/v1/admin/visitors/{english['visitor_id']}", token=desk.agent)[0] == 403
    assert desk.call("GET", f"/api/v1/admin/visitors/{english['visitor_id']}/export", token=desk.agent)[0] == 403
    assert desk.call("DELETE", "/api/v1/admin/visitors/vis_nobody")[0] == 404
    assert desk.call("GET", "/api/v1/admin/visitors/vis_nobody/export")[0] == 404

    status, erased = desk.call("DELETE", f"/api/v1/admin/visitors/{english['visitor_id']}")
    assert status == 200, erased
    assert erased["erased"]["conversations"] == 1 and erased["erased"]["tickets"] == 1, erased
    assert erased["erased"]["attachments"] == 1 and erased["erased"]["messages"] >= 6, erased
    assert traces_of(desk.node, needles(english)) == []
    assert history(desk, english)[0] == 404
    assert desk.call("GET", f"/api/v1/desk/conversations/{english['conversation_id']}")[0] == 404
    assert desk.call("GET", f"/api/v1/admin/visitors/{english['visitor_id']}/export")[0] == 404

    # Erasing again changes nothing and says so; the Chinese visitor lost nothing.
    again = desk.call("DELETE", f"/api/v1/admin/visitors/{english['visitor_id']}")
    assert again == (200, {"visitor_id": english["visitor_id"], "already_erased": True, "erased": {
        "conversations": 0, "messages": 0, "tickets": 0, "attachments": 0, "events": 0}}), again
    status, kept = history(desk, chinese)
    assert status == 200 and any("斑马四七一一" in m["text"] for m in kept["messages"]), kept
    left = traces_of(desk.node, needles(chinese))
    for table in ("messages", "conversations", "tickets", "traces", "events", "attachments", "appliance.db"):
        assert any(where.startswith(f"{table}:") for where in left), (table, left)

    # The CLI: a visitor found by one of their conversations; an unknown one is one line on stderr.
    missing = desk.node.cli("visitor", "erase", "vis_nobody", "--yes", check=False)
    assert missing.returncode == 2 and missing.stderr.strip() == "appliance: error: visitor vis_nobody not found"
    unconfirmed = desk.node.cli("visitor", "erase", "--conversation", chinese["conversation_id"], check=False)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr, unconfirmed.stderr
    assert history(desk, chinese)[0] == 200

    records = desk.call("GET", "/api/v1/admin/audit?limit=1000")[1]["records"]
    erasures = [r for r in records if r["action"] == "visitor.erase" and r["target"] == english["visitor_id"]]
    assert [(r["actor"], r["ip"]) for r in erasures] == [("admin:root", "127.0.0.1")] * 2, erasures
    assert "conversations=1" in erasures[-1]["detail"] and erasures[0]["detail"] == "already erased", erasures
    audit = desk.node.cli("audit", "list").stdout
    for action in ("visitor.export", "visitor.erase"):
        assert any(action in line and english["visitor_id"] in line and "root" in line
                   for line in audit.splitlines()), (action, audit)
    assert "chain intact" in desk.node.cli("audit", "verify").stdout


def test_retention_erases_what_is_older_than_the_setting(desk: Desk) -> None:
    old, recent = visit(desk, "zh", "骆驼八二九三", 2), visit(desk, "en", "okapi-5820", 3)
    desk.node.edit_config("retention_days = 0", "retention_days = 1")
    try:
        make_old(desk.node, old["conversation_id"], days=3)
        planned = desk.node.cli("privacy", "retention", "--dry-run").stdout
        assert planned.startswith("would erase 1 conversations"), planned
        assert history(desk, old)[0] == 200

        done = desk.node.cli("privacy", "retention").stdout
        assert done.startswith("erased 1 conversations") and "tickets=1" in done, done
        assert history(desk, old)[0] == 404
        assert traces_of(desk.node, needles(old)) == []
        status, kept = history(desk, recent)
        assert status == 200 and any("okapi-5820" in m["text"] for m in kept["messages"]), kept
        assert desk.node.cli("privacy", "retention").stdout.startswith("erased 0 conversations")

        # The server erases by itself too: at start, then hourly.
        make_old(desk.node, recent["conversation_id"], days=2)
        desk.server.stop()
        desk.server.start()
        wait_for(lambda: history(desk, recent)[0] == 404, "the server's retention run at start", timeout=30)
        assert traces_of(desk.node, needles(recent)) == []
    finally:
        desk.node.edit_config("retention_days = 1", "retention_days = 0")
    audit = desk.node.cli("audit", "list").stdout
    retention = [line for line in audit.splitlines() if "privacy.retention" in line]
    assert any("cli" in line and "conversations=1" in line for line in retention), audit
    assert any("system" in line and "conversations=1" in line for line in retention), audit
    assert "chain intact" in desk.node.cli("audit", "verify").stdout
