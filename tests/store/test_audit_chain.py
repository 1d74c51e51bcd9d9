"""Tampering with a real node's database file is caught by `appliance audit verify`.

A node is made and used with the real CLI; each test copies its data directory, edits the
SQLite file (or the signed head beside it) the way an intruder with file access would, and runs
`appliance audit verify` as an operator does: exit 1 and the first broken record by origin and
sequence number, or exit 0 and the count when nothing was touched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import pysqlite3.dbapi2 as sqlite3
import pytest

from tests.conftest import Node, init_node
from tests.desk.helpers import add_user, add_users, user_cli


@pytest.fixture(scope="module")
def used_node(tmp_path_factory: pytest.TempPathFactory) -> Node:
    """A node with a few audited changes, in English and Chinese; never tampered with itself."""
    node = init_node(tmp_path_factory.mktemp("audit") / "node")  # node.init: a record without ip/before/after
    node.cli("token", "create", "--role", "admin", "--name", "ops")
    add_user(node, "李雷", "agent", None, "--display-name", "李雷客服")
    add_user(node, "bob", "supervisor")
    assert user_cli(node, "disable", "bob").returncode == 0
    node.cli("token", "revoke", "ops")
    node.cli("token", "create", "--role", "agent", "--name", "夜班脚本")
    return node


@pytest.fixture
def copy(used_node: Node, tmp_path: Path) -> Node:
    target = tmp_path / "node"
    shutil.copytree(used_node.dir, target)
    return Node(target, used_node.admin_password)


def db(node: Node) -> sqlite3.Connection:
    return sqlite3.connect(str(node.dir / "appliance.db"), isolation_level=None)


def records(node: Node) -> list[tuple[str, int, str]]:
    """(origin, seq, action) of every audit record, oldest first."""
    conn = db(node)
    try:
        return list(conn.execute("SELECT origin, seq, action FROM audit ORDER BY origin, seq"))
    finally:
        conn.close()


def verify(node: Node) -> tuple[int, str]:
    result = node.cli("audit", "verify", check=False)
    return result.returncode, result.stdout


def tampered_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("TAMPERED")]
    assert len(lines) == 1, output  # the first broken record, and only that one
    assert "chain BROKEN" in output, output
    return lines[0]


def name(origin: str, seq: int) -> str:
    return f"{origin[:12]}#{seq}"


def test_an_untouched_log_verifies_and_says_how_many_records(copy: Node) -> None:
    present = records(copy)
    assert [r[2] for r in present] == ["node.init", "token.create", "user.add", "user.add", "user.disable",
                                       "token.revoke", "token.create"]
    status, output = verify(copy)
    assert status == 0, output
    assert f"{len(present)} audit records, chain intact; signed head at #{present[-1][1]}" in output


def test_a_middle_record_edited_in_the_audit_table_is_named(copy: Node) -> None:
    origin, seq, _ = records(copy)[2]  # user.add 李雷
    conn = db(copy)
    conn.execute("UPDATE audit SET detail = 'admin' WHERE origin = ? AND seq = ?", (origin, seq))
    conn.close()
    status, output = verify(copy)
    assert status == 1
    line = tampered_line(output)
    assert name(origin, seq) in line and "edited in the audit table" in line, line


def test_an_audit_event_edited_in_the_event_log_is_named(copy: Node) -> None:
    origin, seq, _ = records(copy)[3]  # user.add bob
    conn = db(copy)
    payload = conn.execute("SELECT payload FROM events WHERE origin = ? AND seq = ?", (origin, seq)).fetchone()[0]
    record = msgspec.msgpack.decode(payload)
    record["target"] = "mallory"
    conn.execute("UPDATE events SET payload = ? WHERE origin = ? AND seq = ?",
                 (msgspec.msgpack.encode(record), origin, seq))
    conn.close()
    status, output = verify(copy)
    assert status == 1
    line = tampered_line(output)
    assert name(origin, seq) in line and "edited in the event log" in line, line


def test_a_middle_record_deleted_from_both_tables_breaks_the_chain_at_its_successor(copy: Node) -> None:
    present = records(copy)
    origin, seq, _ = present[2]
    conn = db(copy)
    conn.execute("DELETE FROM audit WHERE origin = ? AND seq = ?", (origin, seq))
    conn.execute("DELETE FROM events WHERE origin = ? AND seq = ?", (origin, seq))
    conn.close()
    status, output = verify(copy)
    assert status == 1
    line = tampered_line(output)
    successor = present[3][1]
    assert name(origin, successor) in line and "a record before it was deleted" in line, line


def test_the_newest_records_deleted_from_both_tables_are_caught_by_the_signed_head(copy: Node) -> None:
    present = records(copy)
    origin = present[0][0]
    conn = db(copy)
    for _, seq, _ in present[-2:]:
        conn.execute("DELETE FROM audit WHERE origin = ? AND seq = ?", (origin, seq))
        conn.execute("DELETE FROM events WHERE origin = ? AND seq = ?", (origin, seq))
    conn.close()
    status, output = verify(copy)
    assert status == 1
    line = tampered_line(output)
    newest, kept = present[-1][1], present[-3][1]
    assert name(origin, newest) in line and "the newest records were deleted" in line, line
    assert f"the newest record present is #{kept}" in line, line

    # A later change does not sign over the gap: the head stays, and verify still says so.
    add_user(copy, "carol", "agent")
    assert records(copy)[-1][2] == "user.add"
    status, output = verify(copy)
    assert status == 1 and "the record the signed head names was deleted" in tampered_line(output), output


def test_a_forged_or_missing_head_is_reported(copy: Node) -> None:
    head_file = copy.dir / "audit.head"
    head = json.loads(head_file.read_text())
    origin = head["origin"]
    head_file.write_text(json.dumps({**head, "seq": head["seq"] - 1}))  # the old signature on other content
    status, output = verify(copy)
    assert status == 1
    line = tampered_line(output)
    assert origin[:12] in line and "forged or damaged" in line, line

    head_file.unlink()
    status, output = verify(copy)
    assert status == 1 and "no signed audit head" in tampered_line(output), output


def test_the_head_follows_writers_in_several_processes_at_once(copy: Node) -> None:
    add_users(copy, {"ann": "agent", "ben": "agent", "cat": "supervisor", "dan": "agent"})
    head = json.loads((copy.dir / "audit.head").read_text())
    assert head["seq"] == records(copy)[-1][1]  # never moved back by a slower process
    status, output = verify(copy)
    assert status == 0, output
