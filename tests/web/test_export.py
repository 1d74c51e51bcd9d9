"""Reports, the conversation search and the export over real HTTP, from conversations made through
the visitor and desk APIs: the figures, English and Chinese search, CSV quoting and UTF-8,
JSON lines, bad filters as 400, and an export that arrives in several chunks."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode

import pytest

from tests.conftest import Server
from tests.desk.helpers import request
from tests.engine.harness import new_token
from tests.web.browser import desk_running
from tests.web.seed_conversations import CHINESE, CHINESE_REPLY, ENGLISH, QUOTED_REPLY, Seeded, seed


class World(NamedTuple):
    server: Server
    token: str
    seeded: Seeded
    dir: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("export")
    with desk_running(directory) as desk:
        token = new_token(desk.node, "admin", "reports-admin")
        yield World(desk.server, token, seed(desk.server, token), directory)


def get(world: World, path: str, **query: str) -> tuple[int, Any, Any]:
    suffix = f"?{urlencode(query)}" if query else ""
    return request(world.server, "GET", f"{path}{suffix}", headers={"Authorization": f"Bearer {world.token}"})


def found_ids(world: World, **query: str) -> set[str]:
    status, body, _ = get(world, "/api/v1/admin/conversations", **query)
    assert status == 200, body
    return {c["id"] for c in body["conversations"]}


def test_the_report_counts_what_visitors_and_agents_did(world: World) -> None:
    status, body, _ = get(world, "/api/v1/admin/reports")
    assert status == 200, body
    totals = body["totals"]
    assert totals["conversations"] == 3
    assert totals["bot_resolved"] == 1 and totals["handed_off"] == 2 and totals["resolved"] == 2
    assert totals["handoff_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert totals["ratings"] == 2 and totals["csat"] == 0.5 and totals["rating_avg"] == 3.5
    assert totals["first_response_s_median"] is not None and totals["resolution_s_median"] is not None
    assert totals["turns"] >= 3 and totals["turn_p99_ms"] > 0 and totals["fallback_rate"] == 0
    assert len(body["days"]) == 30 and body["days"][-1]["conversations"] == 3  # the last 30 days, today last

    today = body["until"]
    status, text, headers = get(world, "/api/v1/admin/reports", since=today, until=today, format="csv")
    assert status == 200 and headers["Content-Type"].startswith("text/csv"), text
    assert "attachment" in headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert [r["date"] for r in rows] == [today, "total"]
    assert rows[0]["conversations"] == "3" and rows[1]["csat"] == "0.5"


def test_search_finds_english_and_chinese_messages_and_filters(world: World) -> None:
    s = world.seeded
    status, body, _ = get(world, "/api/v1/admin/conversations", q="refunds")
    assert status == 200 and [c["id"] for c in body["conversations"]] == [s.english], body
    assert body["conversations"][0]["hits"][0]["text"] == ENGLISH  # "refunds" finds "refund" (stemmed)
    assert body["conversations"][0]["traces"] >= 1

    status, body, _ = get(world, "/api/v1/admin/conversations", q="退款")
    assert status == 200 and [c["id"] for c in body["conversations"]] == [s.chinese], body
    hits = [h["text"] for h in body["conversations"][0]["hits"]]  # the first three matches, in order
    assert hits[0] == CHINESE and CHINESE_REPLY in hits and len(hits) == 3
    assert found_ids(world, q="申请退款") == {s.chinese}  # a longer phrase
    assert found_ids(world, q="退") == {s.chinese}  # one character
    assert found_ids(world, q="退款 三个工作日") == {s.chinese}  # every term, in any message
    assert found_ids(world, q="退款 refund") == set()

    assert found_ids(world, resolved="true") == {s.chinese, s.quoted}
    assert found_ids(world, resolved="false") == {s.english}
    assert found_ids(world, agent="reports-admin") == {s.chinese, s.quoted}
    assert found_ids(world, source="agent") == {s.chinese, s.quoted}
    assert s.english in found_ids(world, source="llm")
    today = dt.datetime.now(dt.UTC).date()
    assert found_ids(world, since=str(today + dt.timedelta(days=2))) == set()
    assert len(found_ids(world, since=str(today - dt.timedelta(days=1)), until=str(today + dt.timedelta(days=1)))) == 3


@pytest.mark.parametrize(("path", "query", "says"), [
    ("/api/v1/admin/conversations", {"since": "2026-13-01"}, "since must be a date"),
    ("/api/v1/admin/conversations", {"since": "2026-12-05", "until": "2026-12-01"}, "must not be after"),
    ("/api/v1/admin/conversations", {"source": "oracle"}, "source must be one of"),
    ("/api/v1/admin/conversations", {"resolved": "maybe"}, "resolved must be true or false"),
    ("/api/v1/admin/conversations", {"q": "?!"}, "nothing to search for"),
    ("/api/v1/admin/conversations", {"limit": "0"}, "limit"),
    ("/api/v1/admin/conversations/export", {"format": "xml"}, "format"),
    ("/api/v1/admin/conversations/export", {"format": "csv", "until": "yesterday"}, "until must be a date"),
    ("/api/v1/admin/reports", {"since": "2024-01-01", "until": "2026-01-01"}, "at most 366 days"),
    ("/api/v1/admin/reports", {"format": "pdf"}, "format"),
])
def test_bad_filters_are_a_400_naming_the_problem(world: World, path: str, query: dict[str, str], says: str) -> None:
    status, body, _ = get(world, path, **query)
    assert status == 400 and body["error"] == "invalid_input" and says in body["message"], body


def exported(world: World, fmt: str, **query: str) -> tuple[list[dict[str, Any]], Any]:
    status, body, headers = get(world, "/api/v1/admin/conversations/export", format=fmt, **query)
    assert status == 200, body
    if fmt == "csv":
        assert isinstance(body, str) and body.startswith("\ufeff"), body[:40]
        return list(csv.DictReader(io.StringIO(body.removeprefix("\ufeff"), newline=""))), headers
    return [json.loads(line) for line in body.splitlines()], headers


def test_export_as_csv_and_json_lines_holds_every_message_verbatim(world: World) -> None:
    s = world.seeded
    rows, headers = exported(world, "csv")
    assert headers["Content-Type"].startswith("text/csv") and ".csv" in headers["Content-Disposition"]
    lines, headers = exported(world, "jsonl")
    assert headers["Content-Type"].startswith("application/x-ndjson")
    assert {r["conversation_id"] for r in rows} == {s.english, s.chinese, s.quoted}
    for row, line in zip(rows, lines, strict=True):  # the same rows in the same order
        assert row["message_id"] == line["message_id"] and row["text"] == line["text"]
    texts = [r["text"] for r in rows]
    assert ENGLISH in texts and CHINESE in texts and CHINESE_REPLY in texts
    assert QUOTED_REPLY in texts  # quotes, commas and the line break survive CSV quoting
    reply = next(line for line in lines if line["text"] == CHINESE_REPLY)
    assert reply["role"] == "agent" and reply["author"] == "reports-admin" and reply["conversation_status"] == "closed"
    assert reply["rating"] == 5 and reply["sent_at"].endswith("Z")
    for conversation in (s.english, s.chinese, s.quoted):  # each conversation's messages together, in order
        times = [r["sent_at"] for r in rows if r["conversation_id"] == conversation]
        assert times == sorted(times)

    chinese, _ = exported(world, "jsonl", q="退款")
    assert {line["conversation_id"] for line in chinese} == {s.chinese}
    assert len(chinese) == sum(1 for line in lines if line["conversation_id"] == s.chinese)
    status, audit, _ = get(world, "/api/v1/admin/audit", limit="20")
    assert status == 200, audit
    assert any(r["action"] == "conversations.export" and r["detail"] == 'q="退款"' for r in audit["records"]), audit


def chunks_of(server: Server, path: str, token: str) -> list[bytes]:
    """The body of a GET as the chunks of its chunked transfer encoding, read off the socket."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
                     .encode())
        raw = b""
        while data := sock.recv(65536):
            raw += data
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0] and b"chunked" in head.lower(), head
    chunks = []
    while True:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return chunks
        chunks.append(body[:size])
        body = body[size + 2:]


def test_a_large_export_arrives_in_several_chunks(world: World) -> None:
    """Last in the module: it adds a conversation of 2,500 messages (straight into the store)."""
    from appliance.core import events as ev
    from appliance.core.types import Message
    from appliance.store import Store

    store = Store.open(world.dir / "node" / "appliance.db", "seed-node")
    try:
        store.append_sync(ev.ConversationStarted(conversation_id="conv_bulk", visitor_id="v_bulk", language="en"))
        for start in range(0, 2500, 500):
            store.append_sync(*[ev.MessageAdded(message=Message(
                id=f"msg_bulk_{n:05}", conversation_id="conv_bulk", role="visitor", text=f"bulkexport line {n}"))
                for n in range(start, start + 500)])
    finally:
        store.close()
    chunks = chunks_of(world.server, "/api/v1/admin/conversations/export?format=jsonl&q=bulkexport", world.token)
    lines = b"".join(chunks).decode().splitlines()
    assert len(lines) == 2500 and json.loads(lines[-1])["message_id"] == "msg_bulk_02499"
    assert len(chunks) >= 3, [len(c) for c in chunks]
