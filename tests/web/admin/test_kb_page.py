"""The knowledge base page: an admin uploads a folder (an English and a Chinese document, and a
picture that is left out) and a file the knowledge base cannot read, watches each file go from
uploading through queued or ingesting to done, sees the documents listed with their chunks and
language, finds them in the search playground with BM25, vector and fused scores, re-indexes
one; then in Chinese uploads another, finds it with a Chinese query and deletes it. Real server,
Debian's Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.admin.test_audit_page import sign_in_zh
from tests.web.browser import chromium, desk_running, new_context, screenshot, sign_in

RETURNS_EN = """# Returns policy

You can return unused goods within 30 days of delivery for a full refund.
Refunds reach the original card in five working days.
"""
RETURNS_ZH = """# 退货政策

自收货之日起三十天内，未使用的商品可以申请退货并全额退款。
退款会在五个工作日内退回原银行卡。
"""
WARRANTY_ZH = """# 保修条款

所有电器自购买之日起保修两年，保修期内免费维修。
"""
INGEST_WAIT_MS = 60_000  # the first upload waits for the embedding model on a busy machine
SCORE = re.compile(r"^\d\.\d+(e-\d+)?")  # then, for BM25 and vector, the rank

# Every text the uploads table shows, in order, recorded as the page changes it.
RECORD_UPLOADS = """(table) => {
  window.__uploadTexts = [];
  new MutationObserver(() => {
    for (const row of table.querySelectorAll("tbody tr")) {
      const text = row.lastElementChild.textContent;
      const name = row.firstElementChild.textContent;
      const seen = window.__uploadTexts.filter((t) => t[0] === name);
      if (!seen.length || seen[seen.length - 1][1] !== text) window.__uploadTexts.push([name, text]);
    }
  }).observe(table, { subtree: true, childList: true, characterData: true });
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def statuses(page: Page, name: str) -> list[str]:
    texts: list[list[str]] = page.evaluate("() => window.__uploadTexts")
    return [text for who, text in texts if who == name]


def test_admin_uploads_watches_and_finds_documents_in_english_and_chinese(browser: Browser, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "returns.md").write_text(RETURNS_EN, encoding="utf-8")
    (folder / "退货政策.md").write_text(RETURNS_ZH, encoding="utf-8")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    tool = tmp_path / "tool.exe"
    tool.write_bytes(b"MZ\x90\x00")
    warranty = tmp_path / "保修条款.md"
    warranty.write_text(WARRANTY_ZH, encoding="utf-8")

    with desk_running(tmp_path / "desk") as desk:
        page = sign_in(new_context(browser), desk, "admin", desk.node.admin_password)
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="Knowledge base").click()
        expect(page).to_have_url(f"{desk.url}/console#/kb")
        documents = page.get_by_role("table", name="Documents")
        expect(documents).to_contain_text("No documents yet")

        form = page.get_by_role("form", name="Upload documents")
        form.get_by_role("button", name="Upload").click()
        expect(page.get_by_role("status").filter(has_text="Could not do that: Choose files or a folder first.")
               ).to_be_visible()
        page.locator("#kb-uploads").evaluate(RECORD_UPLOADS)  # hidden until the first file
        form.get_by_label("Folder").set_input_files(folder)
        form.get_by_label("Files").set_input_files(tool)
        form.get_by_role("button", name="Upload").click()

        uploads = page.get_by_role("table", name="Uploads")
        for name in ("policies/returns.md", "policies/退货政策.md"):
            expect(uploads.get_by_role("row").filter(has_text=name)).to_contain_text(
                "Done: added, 1 chunk", timeout=INGEST_WAIT_MS)
            expect(page.get_by_role("progressbar", name=f"Progress of {name}")).to_have_js_property("value", 1)
            seen = statuses(page, name)
            assert seen[0].startswith("Uploading") and seen[-1].startswith("Done: added"), seen
            assert {"Queued", "Ingesting"} & set(seen), seen  # watched on its way, not only at the end
        expect(uploads.get_by_role("row").filter(has_text="policies/logo.png")).to_contain_text("Skipped")
        expect(uploads.get_by_role("row").filter(has_text="tool.exe")).to_contain_text(
            "Failed: unsupported file type '.exe'")

        english = documents.get_by_role("row").filter(has_text="policies/returns.md")
        expect(english).to_contain_text("Indexed")
        expect(english).to_contain_text("English")
        expect(english).to_contain_text("Returns policy")
        chinese = documents.get_by_role("row").filter(has_text="policies/退货政策.md")
        expect(chinese).to_contain_text("Chinese")
        expect(page.get_by_text(re.compile(r"^2 documents, \d+ chunks"))).to_be_visible()

        playground = page.get_by_role("form", name="Search playground")
        playground.get_by_role("searchbox", name="Query").fill("how many days do I have to return goods")
        playground.get_by_role("button", name="Search").click()
        results = page.get_by_role("table", name="Results")
        top = results.get_by_role("row").nth(1)
        expect(top).to_contain_text("returns.md › Returns policy")
        cells = top.get_by_role("cell")
        for column in (3, 4, 5):  # fused, BM25, vector: each a score
            expect(cells.nth(column)).to_have_text(SCORE)
        expect(cells.nth(4)).to_contain_text("rank 1")

        playground.get_by_role("searchbox", name="Query").fill("退货要多少天")
        playground.get_by_role("button", name="Search").click()
        expect(results.get_by_role("row").nth(1)).to_contain_text("退货政策.md")
        playground.get_by_role("combobox", name="Mode").select_option(label="BM25 only")
        playground.get_by_role("button", name="Search").click()
        expect(results.get_by_role("row").nth(1).get_by_role("cell").nth(5)).to_have_text("–")
        playground.get_by_role("combobox", name="Mode").select_option(label="Hybrid (BM25 + vector)")
        playground.get_by_role("searchbox", name="Query").fill("refund to the card")
        playground.get_by_role("button", name="Search").click()
        expect(results.get_by_role("row").nth(1)).to_contain_text("returns.md")

        page.get_by_role("button", name="Re-index policies/returns.md").click()
        expect(english).to_contain_text("Indexed", timeout=INGEST_WAIT_MS)
        screenshot(page, "admin-kb.png")

        zh = sign_in_zh(browser, desk)
        zh.get_by_role("navigation", name="功能区").get_by_role("link", name="知识库").click()
        zh_documents = zh.get_by_role("table", name="文档")
        expect(zh_documents.get_by_role("row").filter(has_text="policies/退货政策.md")).to_contain_text("中文")
        expect(zh_documents.get_by_role("row").filter(has_text="policies/returns.md")).to_contain_text("已索引")
        zh_form = zh.get_by_role("form", name="上传文档")
        zh_form.get_by_label("文件", exact=True).set_input_files(warranty)
        zh_form.get_by_role("button", name="上传").click()
        expect(zh.get_by_role("table", name="上传进度").get_by_role("row").filter(has_text="保修条款.md")
               ).to_contain_text("完成：已添加", timeout=INGEST_WAIT_MS)
        zh_playground = zh.get_by_role("form", name="检索测试")
        zh_playground.get_by_role("searchbox", name="查询").fill("电器保修期多长")
        zh_playground.get_by_role("button", name="检索").click()
        zh_top = zh.get_by_role("table", name="检索结果").get_by_role("row").nth(1)
        expect(zh_top).to_contain_text("保修条款.md")
        expect(zh_top).to_contain_text("第 1 名")
        screenshot(zh, "admin-kb-zh.png")

        zh.on("dialog", lambda dialog: dialog.accept())
        zh.get_by_role("button", name="删除 保修条款.md").click()
        expect(zh.get_by_role("status").filter(has_text="已删除 保修条款.md。")).to_be_visible()
        expect(zh_documents).not_to_contain_text("保修条款.md")
        assert not (desk.node.dir / "uploads" / "保修条款.md").exists()
