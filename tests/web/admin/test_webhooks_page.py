"""The webhooks page: an admin adds a receiver, sees its secret once, sends a test event that a
real receiver verifies, reads the delivery log and removes the receiver; in English and
Chinese. Real server, Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.engine.harness import wait_for
from tests.web.admin.test_audit_page import sign_in_zh
from tests.web.browser import chromium, desk_running, new_context, screenshot, sign_in
from tests.web.test_webhooks import Receiver


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_admin_adds_tests_and_removes_a_webhook(browser: Browser, tmp_path: Path) -> None:
    secret = "page-secret-0123456789"
    receiver = Receiver(secret)
    receiver.start()
    try:
        with desk_running(tmp_path) as desk:
            page = sign_in(new_context(browser), desk, "admin", desk.node.admin_password)
            page.get_by_role("navigation", name="Sections").get_by_role("link", name="Webhooks").click()
            form = page.get_by_role("form", name="Add a webhook")
            form.get_by_role("textbox", name="Receiver URL").fill("ftp://example.com/hooks")
            form.get_by_role("button", name="Add webhook").click()
            expect(page.get_by_role("status").filter(has_text="must start with http:// or https://")).to_be_visible()

            form.get_by_role("textbox", name="Receiver URL").fill(receiver.url)
            form.get_by_role("textbox", name="Secret (empty: generate one)").fill(secret)
            form.get_by_role("checkbox", name="Satisfaction rating").uncheck()
            form.get_by_role("button", name="Add webhook").click()
            expect(page.get_by_role("region", name="New secret")).to_contain_text(secret)
            receivers = page.get_by_role("table", name="Receivers")
            row = receivers.get_by_role("row").filter(has_text=receiver.url)
            expect(row).to_contain_text("message.created")
            expect(row).not_to_contain_text("csat.submitted")

            page.get_by_role("button", name=f"Send a test event to {receiver.url}").click()
            wait_for(lambda: receiver.events("webhook.test"), "the test event at the receiver")
            assert not receiver.bad, receiver.bad
            log = page.get_by_role("table", name="Delivery log")
            expect(log.get_by_role("row").filter(has_text="webhook.test")).to_contain_text("delivered")
            page.reload()  # the secret is not shown again
            expect(page.get_by_role("table", name="Receivers")).to_contain_text(receiver.url)
            expect(page.get_by_text(secret)).to_have_count(0)
            screenshot(page, "admin-webhooks.png")

            zh = sign_in_zh(browser, desk)
            zh.get_by_role("navigation", name="功能区").get_by_role("link", name="Webhook").click()
            expect(zh.get_by_role("table", name="接收方")).to_contain_text(receiver.url)
            expect(zh.get_by_role("table", name="投递记录").get_by_role("row").filter(has_text="webhook.test")
                   ).to_contain_text("已送达")
            zh_form = zh.get_by_role("form", name="添加 Webhook")
            expect(zh_form.get_by_role("checkbox", name="满意度评价")).to_be_visible()
            screenshot(zh, "admin-webhooks-zh.png")
            zh.on("dialog", lambda dialog: dialog.accept())
            zh.get_by_role("button", name=f"删除 {receiver.url}").click()
            expect(zh.get_by_role("status").filter(has_text=f"已删除 {receiver.url}")).to_be_visible()
            expect(zh.get_by_role("table", name="接收方")).to_contain_text("还没有 Webhook。")
    finally:
        receiver.stop()
