"""``appliance export conversations`` as an operator runs it next to a running server: the same
bytes as the HTTP export, CSV quoting and Chinese in UTF-8, JSON lines, ``--since``, and a bad
date refused with one line on standard error."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
from pathlib import Path

from tests.conftest import CLI, ROOT, Node
from tests.desk.helpers import request
from tests.engine.harness import new_token
from tests.web.browser import desk_running
from tests.web.seed_conversations import CHINESE, CHINESE_REPLY, QUOTED_REPLY, seed


def export(node: Node, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The CLI's standard output as bytes, as ``> FILE`` would store them."""
    return subprocess.run([*CLI, "--config", str(node.config), "export", "conversations", *args],
                          capture_output=True, timeout=120, cwd=ROOT, env=dict(os.environ))


def test_export_conversations_to_a_file_as_csv_and_jsonl(tmp_path: Path) -> None:
    with desk_running(tmp_path) as desk:
        token = new_token(desk.node, "admin", "reports-admin")
        seeded = seed(desk.server, token)
        status, over_http, _ = request(desk.server, "GET", "/api/v1/admin/conversations/export?format=csv",
                                       headers={"Authorization": f"Bearer {token}"})
        assert status == 200, over_http

        as_csv = export(desk.node, "--format", "csv")
        assert as_csv.returncode == 0, as_csv.stderr
        assert as_csv.stdout.decode("utf-8") == over_http  # the same export, byte for byte
        rows = list(csv.DictReader(io.StringIO(as_csv.stdout.decode("utf-8-sig"), newline="")))
        assert {r["conversation_id"] for r in rows} == {seeded.english, seeded.chinese, seeded.quoted}
        texts = {r["text"] for r in rows}
        assert {CHINESE, CHINESE_REPLY, QUOTED_REPLY} <= texts
        assert f"exported {len(rows)} messages" in as_csv.stderr.decode()

        as_jsonl = export(desk.node, "--format", "jsonl", "--query", "退款")
        assert as_jsonl.returncode == 0, as_jsonl.stderr
        lines = [json.loads(line) for line in as_jsonl.stdout.decode("utf-8").splitlines()]
        assert lines and {line["conversation_id"] for line in lines} == {seeded.chinese}
        assert CHINESE_REPLY in {line["text"] for line in lines}

        tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
        later = export(desk.node, "--format", "jsonl", "--since", tomorrow.isoformat())
        assert later.returncode == 0 and later.stdout == b"", later.stderr

        bad = export(desk.node, "--since", "last week")
        assert bad.returncode == 2 and bad.stdout == b""
        assert bad.stderr.decode().strip() == "appliance: error: since must be a date as YYYY-MM-DD (got 'last week')"
