"""Erasure tombstones as a paired node sees them: real SQLite files, events shipped between two
stores exactly as replication applies them (``WriteTxn.insert``, the same ``apply``).

A peer applying the tombstone deletes the same rows and redacts the same logged events; events
about an erased conversation that reach a node after its tombstone are dropped; a visitor who
comes back after an erasure keeps what they write then; an image two visitors sent stays with
the one not erased; a node upgraded in place finds the events it logged before the index existed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.core import events as ev
from appliance.core.types import Message, Trace
from appliance.desk.privacy import Privacy
from appliance.store import Store, WriteTxn
from appliance.store.db import connect

MARKER = "zebra-4711"
IMAGE = "a" * 64


def conversation(cid: str, vid: str, text: str) -> list[ev.EventPayload]:
    return [
        ev.ConversationStarted(conversation_id=cid, visitor_id=vid, profile=ev.VisitorProfile(name=f"{text} Lee")),
        ev.MessageAdded(message=Message(id=f"m1-{cid}", conversation_id=cid, role="visitor", text=f"hi {text}",
                                        attachments=[IMAGE])),
        ev.MessageAdded(message=Message(id=f"m2-{cid}", conversation_id=cid, role="bot", text=f"about {text}",
                                        source="llm", trace_id=f"t-{cid}")),
        ev.TraceRecorded(trace=Trace(trace_id=f"t-{cid}", conversation_id=cid, text=f"hi {text}")),
        ev.TicketCreated(ticket_id=f"k-{cid}", visitor_id=vid, name=f"{text} Lee", contact=f"{text}@example.com",
                         message=f"call me {text}", conversation_id=cid),
    ]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    a, b = Store.open(tmp_path / "a.db", "node-a"), Store.open(tmp_path / "b.db", "node-b")
    yield a, b
    a.close()
    b.close()


def ship(source: Store, target: Store, after_seq: int = 0) -> int:
    """Replicate ``source``'s own events after ``after_seq`` to ``target``; returns the last seq sent."""
    rows = source.read_sync(lambda c: c.execute(
        "SELECT origin, seq, hlc, type, payload FROM events WHERE origin = ? AND seq > ? ORDER BY seq",
        (source.origin, after_seq)).fetchall())
    target.write_sync(lambda txn: [txn.insert(ev.Event(*row)) for row in rows])
    return rows[-1][1] if rows else after_seq


def found(store: Store, needle: str) -> list[str]:
    """Tables (every column of every row, event payloads included) holding ``needle``."""
    conn = connect(store.path, readonly=True)
    try:
        hits = []
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in conn.execute(f'SELECT * FROM "{name}"'):
                if any(needle.encode() in (v if isinstance(v, bytes) else str(v).encode()) for v in row):
                    hits.append(name)
        return sorted(set(hits))
    finally:
        conn.close()


def erase(store: Store, visitor_id: str) -> None:
    asyncio.run(Privacy(store, retention_days=0).erase_visitor(visitor_id, actor="test"))


def test_a_peer_applying_the_tombstone_erases_the_same(stores: tuple[Store, Store]) -> None:
    a, b = stores
    a.append_sync(ev.AttachmentStored(attachment_id=IMAGE, media_type="image/png", visitor_id="vis_1",
                                      data=b"png bytes"), ev.AttachmentShared(attachment_id=IMAGE, visitor_id="vis_2"),
                  *conversation("conv_1", "vis_1", MARKER),
                  *conversation("conv_2", "vis_2", "okapi"))
    sent = ship(a, b)
    assert "messages" in found(b, MARKER) and "events" in found(b, MARKER)

    erase(a, "vis_1")
    ship(a, b, sent)
    for store in (a, b):
        assert found(store, MARKER) == [], store.origin
        assert "messages" in found(store, "okapi")
        # The image is the other visitor's too: it stays, now credited to them.
        assert store.read_sync(lambda c: c.execute("SELECT visitor_id FROM attachments").fetchall()) == [("vis_2",)]


def test_events_about_an_erased_conversation_that_arrive_later_are_dropped(stores: tuple[Store, Store]) -> None:
    a, b = stores
    a.append_sync(*conversation("conv_1", "vis_1", MARKER))
    sent = ship(a, b)
    erase(b, "vis_1")  # erased on b while a, not yet told, goes on writing in the conversation
    a.append_sync(ev.MessageAdded(message=Message(id="late", conversation_id="conv_1", role="agent",
                                                  text=f"late reply {MARKER}")),
                  ev.RatingGiven(conversation_id="conv_1", score=1, comment=f"late {MARKER}"))
    last = ship(a, b, sent)
    assert found(b, MARKER) == []
    kinds = b.read_sync(lambda c: c.execute("SELECT type FROM events WHERE origin = 'node-a' AND seq > ?",
                                            (sent,)).fetchall())
    assert kinds == [("redacted",), ("redacted",)]  # kept in the log, so the high-water mark holds
    assert b.read_sync(lambda c: c.execute("SELECT max(seq) FROM events WHERE origin = 'node-a'").fetchone()) == (
        last,)


def test_a_visitor_who_comes_back_after_erasure_starts_afresh(stores: tuple[Store, Store]) -> None:
    a, _ = stores
    a.append_sync(*conversation("conv_1", "vis_1", MARKER))
    erase(a, "vis_1")
    a.append_sync(*conversation("conv_9", "vis_1", "back-again"))
    assert "messages" in found(a, "back-again") and found(a, MARKER) == []


def test_events_logged_before_the_index_existed_are_found(stores: tuple[Store, Store]) -> None:
    a, _ = stores
    a.append_sync(*conversation("conv_1", "vis_1", MARKER))

    def forget(txn: WriteTxn) -> None:  # as a node upgraded from schema 6 has it
        conn = txn.conn
        conn.execute("DELETE FROM event_subjects")
        conn.execute("INSERT INTO event_subjects_backlog (origin, seq) SELECT origin, max(seq) FROM events"
                     " GROUP BY origin")

    a.write_sync(forget)
    erase(a, "vis_1")
    assert found(a, MARKER) == []
    assert a.read_sync(lambda c: c.execute("SELECT count(*) FROM event_subjects_backlog").fetchone()) == (0,)


def test_a_conversation_the_erasing_node_had_not_seen_yet_is_dropped_when_it_arrives(
        stores: tuple[Store, Store]) -> None:
    a, b = stores
    b.append_sync(*conversation("conv_b", "vis_1", "first-visit"))
    a.append_sync(*conversation("conv_a", "vis_1", MARKER))  # written on a before the erasure on b
    erase(b, "vis_1")
    ship(a, b)
    assert found(b, MARKER) == [] and found(b, "first-visit") == []
    tombstones = b.read_sync(lambda c: c.execute("SELECT subject_id, kind FROM erasures ORDER BY 1").fetchall())
    assert ("conv_a", "conversation") in tombstones and ("k-conv_a", "ticket") in tombstones, tombstones
