"""The models page: an admin adds a second upstream, sends 30 % of conversations to it as a
canary, sets the fallback order, and after some visitor turns (one thumbed down) sees both arms
on the charts and in the totals; then promotes and rolls back; in English and Chinese. Real
server, Debian's Chromium, two mock OpenAI-compatible upstreams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.engine.harness import Upstream, call, chat, upstreams
from tests.web.admin.test_audit_page import sign_in_zh
from tests.web.browser import Desk, chromium, desk_running, new_context, screenshot, sign_in


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def visitor_turns(desk: Desk, canary: Upstream, *, at_least: int = 3) -> tuple[int, int]:
    """New conversations, one turn each, until both arms have answered ``at_least`` times; the
    first reply the canary gave gets a thumbs-down. Returns (active turns, canary turns)."""
    on_canary = on_active = 0
    for i in range(120):
        before = canary.requests
        answer = chat(desk.server, f"How long does delivery to Lyon take for order {i}?")
        if canary.requests > before:
            on_canary += 1
            if on_canary == 1:
                status, body = call(desk.url, "POST", f"/api/v1/messages/{answer['message_id']}/feedback",
                                    {"rating": "down"}, token=answer["visitor_token"])
                assert status == 200, body
        else:
            on_active += 1
        if min(on_active, on_canary) >= at_least:
            return on_active, on_canary
    raise AssertionError(f"after 120 conversations: {on_active} active, {on_canary} canary")


def open_models(page: Page, desk: Desk) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Models").click()
    expect(page).to_have_url(f"{desk.url}/console#/models")


def test_admin_runs_a_canary_and_judges_it_on_the_chart(browser: Browser, tmp_path: Path) -> None:
    with desk_running(tmp_path) as desk, upstreams(tmp_path, "up2") as [up2]:
        page = sign_in(new_context(browser), desk, "admin", desk.node.admin_password)
        page.on("dialog", lambda dialog: dialog.accept())
        open_models(page, desk)
        routing = page.get_by_role("region", name="Routing")
        expect(routing).to_contain_text("up1")
        models = page.get_by_role("table", name="Models")
        expect(models.get_by_role("row").filter(has_text="up1")).to_contain_text("closed")  # its breaker
        expect(page.get_by_text("No model traffic in this window yet.").first).to_be_visible()

        add = page.get_by_role("form", name="Add a model")
        add.get_by_role("textbox", name="Name").fill("up2")
        add.get_by_role("textbox", name="Base URL").fill("ftp://127.0.0.1/v1")
        add.get_by_role("textbox", name="Upstream model id").fill("up2-model")
        add.get_by_role("button", name="Add model").click()
        expect(said(page, "must start with http:// or https://")).to_be_visible()
        add.get_by_role("textbox", name="Base URL").fill(up2.url)
        add.get_by_role("button", name="Add model").click()
        expect(said(page, "Added up2.")).to_be_visible()
        expect(models.get_by_role("row").filter(has_text="up2")).to_contain_text(up2.url)

        canary = page.get_by_role("form", name="Set a canary")
        canary.get_by_role("combobox", name="Canary model").select_option("up2")
        canary.get_by_role("spinbutton", name="Canary percentage").fill("30")
        canary.get_by_role("button", name="Set canary").click()
        expect(said(page, "up2 now answers 30% of conversations.")).to_be_visible()
        expect(routing).to_contain_text("up2 for 30% of conversations")
        expect(models.get_by_role("row").filter(has_text="up2")).to_contain_text("canary 30%")

        fallback = page.get_by_role("region", name="Fallback order")
        fallback.get_by_role("combobox", name="Add to the fallback order").select_option("up1")
        fallback.get_by_role("button", name="Add", exact=True).click()
        expect(fallback.get_by_role("list", name="Fallback order")).to_have_text("up1 ↑↓Take out")
        expect(said(page, "Fallback order: up1.")).to_be_visible()

        on_active, on_canary = visitor_turns(desk, up2)

        history = page.get_by_role("region", name="Arms over time")
        history.get_by_role("button", name="Refresh").click()
        requests = history.get_by_role("img", name="Requests: up1 · active, up2 · canary")
        expect(requests).to_be_visible()
        expect(history.get_by_role("img", name="Latency p99 (ms): up1 · active, up2 · canary")).to_be_visible()
        totals = history.get_by_role("table", name="Arms over the window")
        active_row = totals.get_by_role("row").filter(has_text="active")
        canary_row = totals.get_by_role("row").filter(has_text="canary")
        expect(active_row.get_by_role("cell").nth(2)).to_have_text(str(on_active))
        expect(canary_row.get_by_role("cell").nth(2)).to_have_text(str(on_canary))
        expect(canary_row.get_by_role("cell").nth(7)).to_have_text("1")  # rated
        expect(canary_row.get_by_role("cell").nth(8)).to_have_text("100.0%")  # thumbs-down rate
        expect(active_row.get_by_role("cell").nth(8)).to_have_text("0.0%")
        page.get_by_role("heading", name="Arms over time").scroll_into_view_if_needed()
        screenshot(page, "admin-models.png")

        zh = sign_in_zh(browser, desk)
        zh.get_by_role("navigation", name="功能区").get_by_role("link", name="模型").click()
        expect(zh.get_by_role("region", name="路由")).to_contain_text("up2 承接 30% 的会话")
        zh_history = zh.get_by_role("region", name="各分组趋势")
        expect(zh_history.get_by_role("img", name="请求数: up1 · 当前, up2 · 灰度")).to_be_visible()
        expect(zh_history.get_by_role("table", name="时间范围内各分组汇总").get_by_role("row")
               .filter(has_text="灰度").get_by_role("cell").nth(8)).to_have_text("100.0%")
        zh_models = zh.get_by_role("table", name="模型列表")
        expect(zh_models.get_by_role("row").filter(has_text="up2")).to_contain_text("闭合")
        zh_history.get_by_role("table", name="时间范围内各分组汇总").scroll_into_view_if_needed()
        screenshot(zh, "admin-models-zh.png")

        routing.get_by_role("button", name="Promote the canary").click()
        expect(routing).to_contain_text("Roll back to")
        expect(models.get_by_role("row").filter(has_text="up2")).to_contain_text("active")
        expect(models.get_by_role("button", name="Remove up1")).to_be_enabled()
        routing.get_by_role("button", name="Roll back").click()
        expect(models.get_by_role("row").filter(has_text="up1")).to_contain_text("active")
        expect(models.get_by_role("button", name="Use up2")).to_be_enabled()
        status, body = call(desk.url, "GET", "/api/v1/admin/audit?limit=20",
                            headers={"Cookie": cookie_header(page)})
        assert status == 200, body
        actions = [r["action"] for r in body["records"]]
        for action in ("model.add", "model.canary", "model.fallback", "model.promote", "model.rollback"):
            assert any(action in a for a in actions), (action, actions)

        cookie = {"Cookie": cookie_header(page)}
        status, series = call(desk.url, "GET", "/api/v1/admin/models/series?bucket=hour", headers=cookie)
        assert status == 200, series
        assert [(a["model"], a["arm"], a["totals"]["requests"]) for a in series["arms"]] == [
            ("up1", "active", on_active), ("up2", "canary", on_canary)]
        for query, message in [("bucket=week", "bucket"), ("since=10&until=5", "'since' must be before 'until'"),
                               ("since=0&until=9999999999999", "at most 2000 buckets")]:
            status, body = call(desk.url, "GET", f"/api/v1/admin/models/series?{query}", headers=cookie)
            assert (status, body["error"]) == (400, "invalid_input"), body
            assert message in body["message"], body


def said(page: Page, text: str) -> Locator:
    """The page's notice (role status) once it says ``text``."""
    return page.get_by_role("status").filter(has_text=text)


def cookie_header(page: Page) -> str:
    return "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
