"""The message index on a real SQLite file: built for messages stored before it existed, kept by
the projection that stores messages, emptied by erasure; English and Chinese queries."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.core import events as ev
from appliance.core.errors import InputError
from appliance.core.reports import parse_filter
from appliance.core.types import Message
from appliance.store import Store
from appliance.store.conversation_search import ExportCursor, match_expression, search
from appliance.store.db import connect
from appliance.store.knowledge import cjk_spaced
from appliance.store.migrations import MIGRATIONS, _statements
from appliance.store.privacy import erase


def found(store: Store, query: str) -> list[str]:
    result = store.read_sync(lambda c: search(c, parse_filter(q=query)))
    return [h.message_id for c in result.conversations for h in c.hits]


def message(mid: str, cid: str, text: str, role: str = "visitor") -> ev.MessageAdded:
    return ev.MessageAdded(message=Message(id=mid, conversation_id=cid, role=role, text=text))  # type: ignore[arg-type]


def test_messages_stored_before_the_index_are_found_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = connect(path)
    conn.create_function("kb_index_text", 1, cjk_spaced)
    for number, script in enumerate(MIGRATIONS[:11], start=1):
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute("INSERT INTO conversations (id, visitor_id, started_hlc, updated_hlc) VALUES ('c1', 'v1', 1, 1)")
    conn.execute("INSERT INTO messages (id, conversation_id, hlc, origin, role, text) VALUES"
                 " ('m1', 'c1', 1, 'n', 'visitor', '信用卡丢了怎么挂失'),"
                 " ('m2', 'c1', 2, 'n', 'bot', 'Cards are frozen')")
    conn.close()
    store = Store.open(path, "n")
    try:
        assert found(store, "挂失") == ["m1"] and found(store, "frozen") == ["m2"]
        store.append_sync(message("m3", "c1", "我的信用卡被冻结了"))
        assert found(store, "信用卡") == ["m1", "m3"]
    finally:
        store.close()


def test_erasing_a_conversation_empties_its_index_rows(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "a.db", "n")
    try:
        store.append_sync(ev.ConversationStarted(conversation_id="c1", visitor_id="v1"),
                          message("m1", "c1", "退款进度"),
                          ev.ConversationStarted(conversation_id="c2", visitor_id="v2"),
                          message("m2", "c2", "退款到账"))
        assert sorted(found(store, "退款")) == ["m1", "m2"]
        store.write_sync(lambda txn: erase(txn.conn, "conversation", "c1", 1 << 60, "test"))
        assert found(store, "退款") == ["m2"]
        indexed = store.read_sync(lambda c: c.execute("SELECT count(*) FROM message_fts WHERE message_fts MATCH"
                                                      " '\"退款\"'").fetchone()[0])
        assert indexed == 1
        cursor = ExportCursor(store.path, parse_filter())
        try:
            assert [r.message_id for r in cursor.fetch()] == ["m2"]
        finally:
            cursor.close()
    finally:
        store.close()


def test_queries_become_safe_match_expressions() -> None:
    assert match_expression('refund "AND" OR*') == '"refund" "and" "or"'
    assert match_expression("申请退款 A-1001") == '"申请 请退 退款" "a" "1001"'
    assert match_expression("退") == '"退"*'
    with pytest.raises(InputError, match="nothing to search for"):
        match_expression("?!")
