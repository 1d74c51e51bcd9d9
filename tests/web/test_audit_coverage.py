"""Every action an auditor asks about leaves an audit record: who, what, on what, from where.

Through a real `appliance serve` and the real CLI: sign-in (ok and failed) and sign-out, API
tokens created, used and revoked, a model switched, knowledge added and removed, a conversation
taken over, transferred and read, accounts added and disabled, intent examples taught and removed.
HTTP actions carry the client's address (127.0.0.1 here); CLI actions are `cli` from `local`. The
admin reads it all at `GET /api/v1/admin/audit` and checks the chain at `GET /api/v1/admin/audit/verify`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Node, Server
from tests.desk.helpers import COOKIE, Console, add_users, handoff, login, make_node, request, starting, user_cli
from tests.engine.harness import call, new_token, wait_for

HERE = "127.0.0.1"


class Env:
    def __init__(self, node: Node, server: Server, passwords: dict[str, str]) -> None:
        self.node, self.server, self.passwords = node, server, passwords
        self.admin = Console(server, "admin", node.admin_password)

    def console(self, name: str) -> Console:
        return Console(self.server, name, self.passwords[name])

    def records(self) -> list[dict[str, Any]]:
        status, body = self.admin.call("GET", "/api/v1/admin/audit?limit=1000")
        assert status == 200, body
        return list(body["records"])

    def find(self, action: str, target: str | None = None, actor: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["action"] == action and target in (None, r["target"])
                and actor in (None, r["actor"])]

    def one(self, action: str, target: str | None = None, actor: str | None = None) -> dict[str, Any]:
        """The single record of ``action`` (polled: some are written without the caller waiting)."""
        found = wait_for(lambda: self.find(action, target, actor), f"an audit record {action} {target or ''}")
        assert len(found) == 1, found
        return found[0]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    node = make_node(tmp_path_factory.mktemp("audit-coverage") / "node")
    with starting(node) as server:
        passwords = add_users(node, {"alice": "agent", "李雷": "agent"})
        server.wait_ready()
        yield Env(node, server, passwords)


def test_sign_in_failed_sign_in_and_sign_out_carry_the_client_address(env: Env) -> None:
    alice = env.console("alice")
    signed = env.one("auth.sign_in", "alice")
    assert (signed["actor"], signed["ip"]) == ("agent:alice", HERE), signed

    status, _, _ = login(env.server, "alice", "not her password")
    assert status == 401
    failed = env.one("auth.sign_in_failed", "alice")
    assert failed["ip"] == HERE, failed

    assert alice.call("POST", "/api/v1/auth/logout")[0] == 204
    out = env.one("auth.sign_out", "alice")
    assert (out["actor"], out["ip"]) == ("agent:alice", HERE), out


def test_a_token_is_audited_when_created_used_and_revoked_and_switches_a_model(env: Env) -> None:
    token = new_token(env.node, "admin", "ops")
    created = env.one("token.create", "ops")
    assert (created["actor"], created["ip"], created["after"]) == ("cli", "local", "admin"), created

    for _ in range(3):  # many uses, one record (the first use; then at most one an hour)
        assert call(env.server.url, "GET", "/api/v1/admin/models", token=token)[0] == 200
    used = env.one("token.use", "ops")
    assert (used["actor"], used["ip"]) == ("admin:ops", HERE), used

    spec = {"name": "branch-llm", "base_url": "http://127.0.0.1:9/v1", "model": "qwen"}
    assert call(env.server.url, "POST", "/api/v1/admin/models", spec, token=token)[0] == 200
    status, table = call(env.server.url, "POST", "/api/v1/admin/models/use", {"name": "branch-llm"}, token=token)
    assert status == 200 and table["active"] == "branch-llm", table
    switched = env.one("model.use", "routing")
    assert (switched["actor"], switched["ip"], switched["detail"]) == ("admin:ops", HERE, "branch-llm"), switched
    assert json.loads(switched["before"])["active"] is None, switched
    assert json.loads(switched["after"])["active"] == "branch-llm", switched
    assert len(env.find("token.use", "ops")) == 1  # the model changes did not add more

    env.node.cli("token", "revoke", "ops")
    revoked = env.one("token.revoke", "ops")
    assert (revoked["actor"], revoked["ip"], revoked["before"], revoked["after"]) == (
        "cli", "local", "active", "revoked"), revoked
    assert call(env.server.url, "GET", "/api/v1/admin/models", token=token)[0] == 401


def test_knowledge_added_and_removed_from_the_cli(env: Env, tmp_path: Path) -> None:
    docs = tmp_path / "kb"
    docs.mkdir()
    (docs / "returns.md").write_text("# Returns\n\nYou can return goods within 30 days.\n", encoding="utf-8")
    (docs / "退货政策.md").write_text("# 退货政策\n\n商品在三十天内可以退货。\n", encoding="utf-8")
    env.node.cli("kb", "add", str(docs), "--quiet")
    for path in (docs / "returns.md", docs / "退货政策.md"):
        added = env.one("kb.add", str(path.resolve()))
        assert (added["actor"], added["ip"], added["before"]) == ("cli", "local", ""), added
        assert len(added["after"]) == 64, added  # the content hash

    env.node.cli("kb", "remove", "退货政策.md")
    removed = env.one("kb.remove", str((docs / "退货政策.md").resolve()))
    assert (removed["actor"], removed["ip"]) == ("cli", "local"), removed
    assert removed["before"] == env.one("kb.add", removed["target"])["after"], removed


def test_knowledge_uploaded_reindexed_and_deleted_in_the_console_names_the_admin_and_address(env: Env) -> None:
    headers = {"Cookie": f"{COOKIE}={env.admin.cookie}", "X-CSRF-Token": env.admin.csrf,
               "X-Filename": "audit%2F%E4%BF%9D%E4%BF%AE.md", "Content-Type": "text/markdown"}
    status, job, _ = request(env.server, "POST", "/api/v1/admin/kb/documents", "# 保修\n\n保修两年。\n".encode(),
                             headers=headers)
    assert status == 202, job

    def finished(job_id: str) -> dict[str, Any] | None:
        jobs = env.admin.call("GET", "/api/v1/admin/kb/jobs")[1]["jobs"]
        return next((j for j in jobs if j["job_id"] == job_id and j["status"] in ("done", "failed")), None)

    done = wait_for(lambda: finished(job["job_id"]), "the upload to be ingested", timeout=60)
    assert done["status"] == "done", done
    source = str(env.node.dir.resolve() / "uploads" / "audit" / "保修.md")
    added = env.one("kb.add", source)
    assert (added["actor"], added["ip"], added["before"]) == ("admin:admin", HERE, ""), added

    status, body = env.admin.call("POST", f"/api/v1/admin/kb/documents/{done['document_id']}/reindex")
    assert status == 202, body
    wait_for(lambda: finished(body["jobs"][0]["job_id"]), "the re-index")
    updated = env.one("kb.update", source)
    assert (updated["actor"], updated["ip"], updated["before"]) == ("admin:admin", HERE, added["after"]), updated

    assert env.admin.call("DELETE", f"/api/v1/admin/kb/documents/{done['document_id']}")[0] == 200
    removed = env.one("kb.remove", source)
    assert (removed["actor"], removed["ip"], removed["before"]) == ("admin:admin", HERE, added["after"]), removed


def test_takeover_transfer_and_reading_a_conversation_are_audited(env: Env) -> None:
    visitor = handoff(env.server, language="zh")
    cid = visitor["conversation_id"]
    li, alice = env.console("李雷"), env.console("alice")

    assert li.desk("POST", f"/{cid}/take")[0] == 200
    taken = env.one("conversation.take", cid)
    assert (taken["actor"], taken["ip"], taken["before"], taken["after"]) == (
        "agent:李雷", HERE, "queue", "agent:李雷"), taken

    status, body = li.desk("POST", f"/{cid}/transfer", {"to": "alice"})
    assert status == 200, body
    moved = env.one("conversation.transfer", cid)
    assert (moved["actor"], moved["ip"], moved["before"], moved["after"]) == (
        "agent:李雷", HERE, "agent:李雷", "agent:alice"), moved

    for _ in range(3):  # opened again and again: one record per reader (at most one every 10 minutes)
        alice.detail(cid)
    read = env.one("conversation.read", cid, "agent:alice")
    assert read["ip"] == HERE, read
    assert alice.desk("POST", f"/{cid}/close")[0] == 200
    env.one("conversation.close", cid)
    assert len(env.find("conversation.read", cid, "agent:alice")) == 1


def test_accounts_added_and_disabled_from_the_cli(env: Env) -> None:
    assert user_cli(env.node, "add", "王芳", "--role", "supervisor", "--password-stdin",
                    stdin="wang-fang-secret\n").returncode == 0
    added = env.one("user.add", "王芳")
    assert (added["actor"], added["ip"]) == ("cli", "local"), added
    assert json.loads(added["after"])["role"] == "supervisor" and "password" not in added["after"], added

    assert user_cli(env.node, "disable", "王芳").returncode == 0
    disabled = env.one("user.disable", "王芳")
    assert json.loads(disabled["before"])["disabled"] is False, disabled
    assert json.loads(disabled["after"])["disabled"] is True, disabled


def test_webhooks_added_tested_and_removed_are_audited_without_their_secret(env: Env) -> None:
    secret = "audit-webhook-secret-42"
    status, made = env.admin.call("POST", "/api/v1/admin/webhooks", {
        "url": "http://127.0.0.1:9/audited", "events": ["csat.submitted"], "secret": secret})
    assert status == 201, made
    added = env.one("webhook.add", "http://127.0.0.1:9/audited")
    assert (added["actor"], added["ip"], added["after"]) == ("admin:admin", HERE, "csat.submitted"), added
    hook = made["webhook"]["id"]
    assert env.admin.call("POST", f"/api/v1/admin/webhooks/{hook}/test")[0] == 202
    assert env.one("webhook.test", "http://127.0.0.1:9/audited")["ip"] == HERE
    removed = env.node.cli("webhook", "remove", "http://127.0.0.1:9/audited")
    assert removed.returncode == 0, removed.stderr
    gone = env.one("webhook.remove", "http://127.0.0.1:9/audited")
    assert (gone["actor"], gone["ip"], gone["detail"]) == ("cli", "local", hook), gone
    assert secret not in json.dumps(env.records())


def test_intent_examples_taught_and_removed_in_the_console_name_the_admin_address_and_text(env: Env) -> None:
    text = "put me through to a supervisor"
    status, made = env.admin.call("POST", "/api/v1/admin/intents/human/examples", {"text": text})
    assert status == 201, made
    added = env.one("intent.example.add", "human")
    assert (added["actor"], added["ip"], added["before"], added["after"]) == ("admin:admin", HERE, "", text), added
    status, _ = env.admin.call("DELETE", f"/api/v1/admin/intents/human/examples/{made['example']['id']}")
    assert status == 200
    removed = env.one("intent.example.remove", "human")
    assert (removed["actor"], removed["ip"], removed["before"], removed["detail"]) == (
        "admin:admin", HERE, text, "console"), removed


def test_settings_changed_in_the_console_are_audited_with_the_part_before_and_after(env: Env) -> None:
    status, changed = env.admin.call("PUT", "/api/v1/admin/settings", {
        "desk": {"timezone": "Asia/Shanghai", "hours": ["mon-sun 00:00-24:00"]}, "widget": {"title": "审计"}})
    assert status == 200, changed
    hours = env.one("settings.change", "desk.hours")
    assert (hours["actor"], hours["ip"]) == ("admin:admin", HERE), hours
    assert json.loads(hours["before"])["timezone"] == "UTC", hours
    assert json.loads(hours["after"]) == {"timezone": "Asia/Shanghai", "hours": ["mon-sun 00:00-24:00"],
                                          "holidays": []}, hours
    look = env.one("settings.change", "widget.look")
    assert (look["actor"], json.loads(look["after"])["title"]) == ("admin:admin", "审计"), look


def test_the_admin_checks_the_chain_over_http_and_with_the_cli(env: Env) -> None:
    status, body = env.admin.call("GET", "/api/v1/admin/audit/verify")
    assert status == 200, body
    assert body["ok"] is True and body["first"] is None, body
    assert body["records"] >= 20 and body["head_seq"] > 0, body

    alice = env.console("alice")
    assert alice.call("GET", "/api/v1/admin/audit/verify")[0] == 403
    assert request(env.server, "GET", "/api/v1/admin/audit/verify")[0] == 401

    verified = env.node.cli("audit", "verify")
    assert "chain intact" in verified.stdout, verified.stdout
