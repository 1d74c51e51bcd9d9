"""The console's sections: an admin moves between the desk and the administration pages; the
audit log page lists what the CLI did and shows the hash chain intact, in English and Chinese;
an agent sees no administration at all. Real server, Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.browser import Desk, add_agent, chromium, desk_running, new_context, screenshot, sign_in


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_admin_reads_the_audit_log_and_its_chain_check(browser: Browser, tmp_path: Path) -> None:
    with desk_running(tmp_path) as desk:
        add_agent(desk.node, "lin", "agent-password-1", capacity=2)
        page = sign_in(new_context(browser), desk, "admin", desk.node.admin_password)
        nav = page.get_by_role("navigation", name="Sections")
        nav.get_by_role("link", name="Audit log").click()
        expect(page).to_have_url(f"{desk.url}/console#/audit")
        records = page.get_by_role("table", name="Records")
        expect(records.get_by_role("row").filter(has_text="user.add")).to_contain_text("lin")
        expect(page.get_by_text("Chain intact")).to_be_visible()
        screenshot(page, "admin-audit.png")

        nav.get_by_role("link", name="Desk").click()
        expect(page.get_by_role("navigation", name="Inbox")).to_be_visible()
        page.go_back()
        expect(page.get_by_role("table", name="Records")).to_be_visible()

        zh = sign_in_zh(browser, desk)
        zh.get_by_role("navigation", name="功能区").get_by_role("link", name="审计日志").click()
        expect(zh.get_by_text("哈希链完整")).to_be_visible()

        agent = sign_in(new_context(browser), desk, "lin", "agent-password-1")
        expect(agent.get_by_role("navigation", name="Sections")).to_be_hidden()
        agent.goto(f"{desk.url}/console#/audit")  # typed by hand: still the desk
        expect(agent.get_by_role("navigation", name="Inbox")).to_be_visible()
        expect(agent.get_by_role("table", name="Records")).to_have_count(0)


def sign_in_zh(browser: Browser, desk: Desk) -> Page:
    page = new_context(browser, locale="zh-CN").new_page()
    page.goto(f"{desk.url}/console")
    page.locator("#signin-username").fill("admin")
    page.locator("#signin-password").fill(desk.node.admin_password)
    page.locator("#signin-submit").click()
    expect(page.get_by_role("button", name="退出登录")).to_be_visible()
    return page
