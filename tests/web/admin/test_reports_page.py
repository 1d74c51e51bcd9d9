"""The reports and conversations pages in a real browser, from conversations made through the
visitor and desk APIs (a bot answer, two handoffs answered by an agent, resolved and rated): the
charts and figures, a CSV download, English and Chinese search, a conversation with its decision
trace, the export links; in English and Chinese, for an admin and a supervisor."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.desk.helpers import add_user
from tests.engine.harness import new_token
from tests.web.browser import chromium, desk_running, new_context, screenshot, sign_in
from tests.web.seed_conversations import CHINESE, CHINESE_REPLY, ENGLISH, seed


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def open_section(page: Page, nav: str, link: str) -> None:
    page.get_by_role("navigation", name=nav).get_by_role("link", name=link).click()


def test_reports_and_conversations_pages_from_real_conversations(browser: Browser, tmp_path: Path) -> None:
    with desk_running(tmp_path) as desk:
        token = new_token(desk.node, "admin", "reports-admin")
        seeded = seed(desk.server, token)
        supervisor = add_user(desk.node, "sue", "supervisor")

        page = sign_in(new_context(browser), desk, "admin", desk.node.admin_password)
        open_section(page, "Sections", "Reports")
        expect(page).to_have_url(f"{desk.url}/console#/reports")
        summary = page.get_by_role("definition").filter(has_text="%")
        expect(summary.first).to_be_visible()
        figures = page.locator(".report-summary")
        expect(figures).to_contain_text("Conversations3")
        expect(figures).to_contain_text("Handoff rate66.7%")
        expect(figures).to_contain_text("CSAT50%")
        expect(figures).to_contain_text("2 ratings, average 3.5")
        for title in ("Conversations per day", "Bot-resolved rate", "Handoff rate", "First response time (median)",
                      "Resolution time (median)", "Satisfaction (CSAT, ratings of 4–5)", "Turn latency p99",
                      "Fallback rate"):
            expect(page.get_by_role("img", name=re.compile(f"^{re.escape(title)}"))).to_be_visible()
        per_day = page.get_by_role("table", name="Conversations per day")
        expect(per_day.get_by_role("row").last).to_contain_text("3")
        expect(page.get_by_role("table", name="Handoff rate").get_by_role("row").last).to_contain_text("66.7%")
        expect(page.get_by_role("table", name="Satisfaction (CSAT, ratings of 4–5)").get_by_role("row").last
               ).to_contain_text("50%")
        screenshot(page, "admin-reports.png")

        with page.expect_download() as download:
            page.get_by_role("link", name="Download CSV").click()
        csv_text = Path(download.value.path()).read_text(encoding="utf-8-sig")
        assert csv_text.splitlines()[0].startswith("date,conversations,bot_resolved")
        assert csv_text.splitlines()[-1].startswith("total,3,1,")

        open_section(page, "Sections", "Conversations")
        search = page.get_by_role("search", name="Search conversations")
        search.get_by_role("searchbox", name="Text").fill("refund")
        search.get_by_role("button", name="Search").click()
        results = page.get_by_role("table", name="Results")
        expect(page.get_by_role("status").filter(has_text="Conversations found")).to_have_text(
            "Conversations found: 1")
        expect(results).to_contain_text(ENGLISH)
        results.get_by_role("button", name=f"Open the conversation {ENGLISH}").click()
        opened = page.get_by_role("region", name=f"Conversation {seeded.english}")
        expect(opened.locator("summary").filter(has_text="Why this answer").first).to_be_visible()
        expect(opened.get_by_role("link", name="Trace as JSON").first).to_have_attribute(
            "href", f"/api/v1/admin/traces/{seeded.trace_id}")

        search.get_by_role("searchbox", name="Text").fill("退款")
        search.get_by_label("Resolved").select_option("true")
        search.get_by_role("button", name="Search").click()
        expect(results).to_contain_text(CHINESE_REPLY)
        expect(results.get_by_role("row")).to_have_count(2)  # the header and the Chinese conversation
        export = search.get_by_role("link", name="Export CSV")
        expect(export).to_have_attribute("href", re.compile(r"export\?q=%E9%80%80%E6%AC%BE&resolved=true&format=csv"))
        with page.expect_download() as download:
            export.click()
        exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
        assert CHINESE in exported and CHINESE_REPLY in exported and ENGLISH not in exported
        results.get_by_role("button", name=f"Open the conversation {CHINESE}").click()
        expect(page.get_by_role("region", name=f"Conversation {seeded.chinese}")).to_contain_text(CHINESE_REPLY)
        screenshot(page, "admin-conversations.png")

        zh = sign_in_zh(browser, desk.url, "sue", supervisor)
        open_section(zh, "功能区", "报表")
        expect(zh.get_by_role("img", name=re.compile("^每日会话数"))).to_be_visible()
        expect(zh.locator(".report-summary")).to_contain_text("2 条评价，平均 3.5 分")
        screenshot(zh, "admin-reports-zh.png")
        open_section(zh, "功能区", "会话检索")
        zh_search = zh.get_by_role("search", name="检索会话")
        zh_search.get_by_role("searchbox", name="关键词").fill("申请退款")
        zh_search.get_by_role("button", name="检索").click()
        expect(zh.get_by_role("status").filter(has_text="找到")).to_have_text("找到 1 个会话")
        expect(zh.get_by_role("table", name="检索结果")).to_contain_text(CHINESE)
        screenshot(zh, "admin-conversations-zh.png")


def sign_in_zh(browser: Browser, url: str, username: str, password: str) -> Page:
    page = new_context(browser, locale="zh-CN").new_page()
    page.goto(f"{url}/console")
    page.locator("#signin-username").fill(username)
    page.locator("#signin-password").fill(password)
    page.locator("#signin-submit").click()
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    return page
