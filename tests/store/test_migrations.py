"""Schema migrations on a real SQLite file written by an older version."""

from __future__ import annotations

from pathlib import Path

from appliance.store import knowledge as kb
from appliance.store.db import connect
from appliance.store.migrations import MIGRATIONS, _statements, migrate


def _database_at(path: Path, version: int) -> None:
    conn = connect(path)
    for number, script in enumerate(MIGRATIONS[:version], start=1):
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.close()


def test_knowledge_written_before_bigram_indexing_is_searchable_in_chinese_after_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _database_at(path, 7)
    conn = connect(path)
    conn.execute(
        "INSERT INTO kb_documents (id, source, title, hlc, origin) VALUES ('d1', '银行卡.md', '银行卡', 1, 'n')"
    )
    rows = [
        ("c1", 0, "挂失", "信用卡丢失后请立即拨打客服电话挂失，挂失后卡片即被冻结。", 0, ""),
        ("c2", 1, "", "如何修改登录密码？", 1, "在手机银行的“我的-安全中心”中修改登录密码。"),
        ("c3", 2, "Fees", "Transfers between your own accounts are free.", 0, ""),
    ]
    for chunk_id, ordinal, section, text, is_qa, answer in rows:
        row = conn.execute(
            "INSERT INTO kb_chunks (id, document_id, ordinal, section, text, is_qa, answer)"
            " VALUES (?, 'd1', ?, ?, ?, ?, ?)",
            (chunk_id, ordinal, section, text, is_qa, answer),
        ).lastrowid
        # Version 7 indexed Chinese as single characters in kb_fts and as trigrams in kb_trigram.
        conn.execute("INSERT INTO kb_fts (rowid, head, body) VALUES (?, ?, ?)",
                     (row, " ".join(section), " ".join(text)))
        conn.execute("INSERT INTO kb_trigram (rowid, body) VALUES (?, ?)", (row, text))

    assert migrate(conn) == len(MIGRATIONS)

    def found(query: str) -> list[str]:
        matches = conn.execute(
            "SELECT c.id FROM kb_fts JOIN kb_chunks c ON c.row = kb_fts.rowid"
            " WHERE kb_fts MATCH ? ORDER BY bm25(kb_fts)",
            (kb.fts_query(query),),
        )
        return [chunk_id for (chunk_id,) in matches]

    assert found("我的信用卡丢了怎么办")[0] == "c1"
    assert found("登录密码忘了怎么改")[0] == "c2"
    assert found("are transfers free")[0] == "c3"
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'kb_trigram'").fetchone()[0] == 0
    conn.close()
