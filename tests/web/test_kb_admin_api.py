"""The knowledge base's admin API through a real `appliance serve`: an upload (raw body, name in
X-Filename) is queued and ingested in the background, listed with its chunks and language,
searched with BM25, vector and fused scores, re-indexed and removed; bad uploads, unknown
documents and bad searches are clear 4xx answers in the one error format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import Node, Server
from tests.desk.helpers import make_node, request, starting
from tests.engine.harness import new_token, wait_for

KB = "/api/v1/admin/kb"
LIMIT = 65_536  # server.max_document_bytes for these tests

RETURNS_EN = """# Returns policy

You can return unused goods within 30 days of delivery for a full refund.
Refunds reach the original card in five working days.
"""
RETURNS_ZH = """# 退货政策

自收货之日起三十天内，未使用的商品可以申请退货并全额退款。
退款会在五个工作日内退回原银行卡。
"""


class Admin:
    def __init__(self, node: Node, server: Server) -> None:
        self.node, self.server = node, server
        self.token = new_token(node, "admin", "kb-script")

    def call(self, method: str, path: str, body: dict[str, Any] | bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        status, decoded, _ = request(self.server, method, path, body,
                                     headers={"Authorization": f"Bearer {self.token}", **(headers or {})})
        return status, decoded

    def upload(self, name: str | None, data: bytes, *, raw_name: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "text/markdown"}
        if raw_name is not None:
            headers["X-Filename"] = raw_name
        elif name is not None:
            headers["X-Filename"] = quote(name, safe="")
        return self.call("POST", f"{KB}/documents", data, headers)

    def job(self, job_id: str) -> dict[str, Any]:
        status, body = self.call("GET", f"{KB}/jobs")
        assert status == 200, body
        return next(job for job in body["jobs"] if job["job_id"] == job_id)

    def finished(self, job_id: str) -> dict[str, Any]:
        return wait_for(lambda: (job := self.job(job_id))["status"] in ("done", "failed") and job,
                        f"job {job_id} to finish", timeout=60)

    def documents(self) -> dict[str, dict[str, Any]]:
        status, body = self.call("GET", f"{KB}/documents")
        assert status == 200, body
        return {doc["name"]: doc for doc in body["documents"]}

    def search(self, query: str, mode: str = "hybrid", k: int = 3) -> list[dict[str, Any]]:
        status, body = self.call("POST", f"{KB}/search", {"query": query, "mode": mode, "k": k})
        assert status == 200, body
        assert body["mode"] == mode, body
        return list(body["hits"])


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    node = make_node(tmp_path_factory.mktemp("kb-admin") / "node",
                     **{"max_document_bytes = 20971520": f"max_document_bytes = {LIMIT}"})
    with starting(node) as server:
        who = Admin(node, server)
        server.wait_ready()
        yield who


def is_error(status: int, body: Any, *words: str) -> bool:
    return (isinstance(body, dict) and set(body) == {"status", "error", "message"} and body["status"] == status
            and all(word in body["message"] for word in words))


def test_an_upload_is_ingested_listed_and_found_in_english_and_chinese(admin: Admin) -> None:
    status, job = admin.upload("guides/returns.md", RETURNS_EN.encode())
    assert status == 202 and job["status"] in ("queued", "ingesting") and job["name"] == "guides/returns.md", job
    status, zh_job = admin.upload("退货政策.md", RETURNS_ZH.encode())
    assert status == 202, zh_job
    for made in (job, zh_job):
        done = admin.finished(made["job_id"])
        assert (done["status"], done["outcome"]) == ("done", "added") and done["chunks"] >= 1, done
    assert (admin.node.dir / "uploads" / "guides" / "returns.md").read_text(encoding="utf-8") == RETURNS_EN

    documents = admin.documents()
    en, zh = documents["guides/returns.md"], documents["退货政策.md"]
    assert (en["language"], en["status"], en["title"]) == ("en", "indexed", "Returns policy"), en
    assert (zh["language"], zh["status"], zh["title"]) == ("zh", "indexed", "退货政策"), zh
    assert en["chunks"] >= 1 and en["ingested_at_ms"] > 0 and en["size_bytes"] == len(RETURNS_EN.encode()), en

    top = admin.search("how many days to return goods for a refund")[0]
    assert top["document"] == "returns.md", top
    assert top["score"] > 0 and top["bm25_score"] > 0 and top["bm25_rank"] >= 1, top
    assert 0 < top["vector_similarity"] <= 1 and top["vector_rank"] >= 1, top
    zh_top = admin.search("退货要多少天")[0]
    assert zh_top["document"] == "退货政策.md" and zh_top["bm25_score"] > 0, zh_top

    lexical = admin.search("refund", mode="bm25")
    assert lexical and all(hit["vector_rank"] is None for hit in lexical), lexical
    nearest = admin.search("money back", mode="vector")
    assert nearest and all(hit["bm25_rank"] is None and hit["bm25_score"] is None for hit in nearest), nearest


def test_reindex_one_and_all_then_remove_with_its_file(admin: Admin) -> None:
    status, job = admin.upload("shipping.md", b"# Shipping\n\nParcels ship within two days.\n")
    assert status == 202, job
    document_id = admin.finished(job["job_id"])["document_id"]

    status, body = admin.call("POST", f"{KB}/documents/{document_id}/reindex")
    assert status == 202 and [j["name"] for j in body["jobs"]] == ["shipping.md"], body
    assert admin.finished(body["jobs"][0]["job_id"])["outcome"] == "updated"
    status, body = admin.call("POST", f"{KB}/reindex")
    assert status == 202 and "shipping.md" in {j["name"] for j in body["jobs"]}, body
    for each in body["jobs"]:
        assert admin.finished(each["job_id"])["status"] == "done", each

    status, body = admin.call("DELETE", f"{KB}/documents/{document_id}")
    assert status == 200 and body["removed"] == [document_id], body
    assert "shipping.md" not in admin.documents()
    assert not (admin.node.dir / "uploads" / "shipping.md").exists()
    status, audit = admin.call("GET", "/api/v1/admin/audit?limit=200")
    assert status == 200, audit
    actions = {(r["action"], r["actor"]) for r in audit["records"] if r["target"].endswith("shipping.md")}
    assert {("kb.add", "admin:kb-script"), ("kb.update", "admin:kb-script"),
            ("kb.remove", "admin:kb-script")} <= actions, actions


def test_bad_uploads_are_clear_4xx_and_leave_nothing_behind(admin: Admin) -> None:
    status, body = admin.upload(None, b"# No name\n")
    assert status == 400 and is_error(400, body, "X-Filename"), body
    status, body = admin.upload("empty.md", b"")
    assert status == 400 and is_error(400, body, "empty"), body
    status, body = admin.upload("../escape.md", b"# Out\n")
    assert status == 400 and is_error(400, body, ".."), body
    status, body = admin.upload(None, b"# x\n", raw_name="bad%FFname.md")
    assert status == 400 and is_error(400, body, "UTF-8"), body
    status, body = admin.upload("tool.exe", b"MZ\x90\x00")
    assert status == 415 and is_error(415, body, ".exe", ".md"), body
    status, body = admin.upload("huge.md", b"#" * (LIMIT + 1))
    assert status == 413 and is_error(413, body, str(LIMIT)), body

    status, job = admin.upload("broken.pdf", b"this is not a PDF at all")
    assert status == 202, job
    failed = admin.finished(job["job_id"])
    assert failed["status"] == "failed" and failed["error"], failed
    assert "broken.pdf" not in admin.documents()
    assert not (admin.node.dir / "uploads" / "broken.pdf").exists()
    uploads = {p.name for p in (admin.node.dir / "uploads").rglob("*")}
    assert not {"escape.md", "tool.exe", "huge.md", "empty.md"} & uploads, uploads


def test_unknown_documents_and_bad_searches(admin: Admin) -> None:
    status, body = admin.call("DELETE", f"{KB}/documents/doc_nothing_here")
    assert status == 404 and is_error(404, body, "doc_nothing_here"), body
    status, body = admin.call("POST", f"{KB}/documents/doc_nothing_here/reindex")
    assert status == 404 and is_error(404, body), body
    for bad in ({"query": "   "}, {"query": ""}, {"query": "refund", "mode": "fuzzy"}, {"query": "refund", "k": 0},
                {"query": "refund", "k": 51}, {"query": "refund", "extra": 1}):
        status, body = admin.call("POST", f"{KB}/search", bad)
        assert status == 400 and is_error(400, body), (bad, body)


def test_only_admins_manage_the_knowledge_base(admin: Admin) -> None:
    agent = new_token(admin.node, "agent", "kb-agent")
    status, body, _ = request(admin.server, "GET", f"{KB}/documents", headers={"Authorization": f"Bearer {agent}"})
    assert status == 403 and is_error(403, body), body
    status, body, _ = request(admin.server, "POST", f"{KB}/documents", b"# x\n",
                              headers={"X-Filename": "x.md", "Content-Type": "text/markdown"})
    assert status == 401 and is_error(401, body), body
