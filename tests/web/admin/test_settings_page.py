"""The settings page: an admin sets the widget's title, colour and a Chinese greeting, and a
visitor on another site's page with the widget sees them (embed attributes still win); a bad
hours line is refused naming the key; hours saved closed send the next visitor who asks for a
person to the leave-a-message form at once. In English and Chinese. Real server, Debian's Chromium."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.web.admin.test_audit_page import sign_in_zh
from tests.web.browser import chromium, desk_running, host_site, new_context, open_chat, screenshot, sign_in
from tests.web.test_desk_browser import LEAVE_MESSAGE_EN

ACCENT, ACCENT_RGB = "#e4572e", "rgb(228, 87, 46)"
GREETING_ZH = "您好，欢迎光临 Acme！有什么可以帮您？"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def shop_site(desk_url: str) -> AbstractContextManager[str]:
    """/plain.html embeds the widget with no look of its own, /branded.html with its own title
    and colour."""
    return host_site({
        "/plain.html": f'<script src="{desk_url}/widget.js" data-lang="zh"></script>',
        "/branded.html": f'<script src="{desk_url}/widget.js" data-lang="zh" data-title="Shop help"'
                         ' data-color="#1b7f46"></script>',
    }, lang="zh")


def background(locator: Locator) -> str:
    return str(locator.evaluate("(el) => getComputedStyle(el).backgroundColor"))


def closed_now() -> str:
    """A line under which the desk is closed now (UTC): one whole day, three days from today."""
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return f"{days[(dt.datetime.now(dt.UTC).weekday() + 3) % 7]} 00:00-24:00"


def open_settings(page: Page) -> None:
    page.get_by_role("navigation", name="Sections").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()


def test_admin_sets_the_look_and_the_hours_and_visitors_see_them(browser: Browser, tmp_path: Path) -> None:
    with desk_running(tmp_path) as desk, shop_site(desk.url) as site:
        admin = sign_in(new_context(browser), desk, "admin", desk.node.admin_password)
        open_settings(admin)
        look = admin.get_by_role("form", name="Widget look")
        expect(admin.get_by_role("region", name="Preview")).to_contain_text("Chat with us")
        look.get_by_role("textbox", name="Title").fill("Acme Help")
        look.get_by_label("Accent colour").fill(ACCENT)
        look.get_by_role("textbox", name="Greeting (Chinese)").fill(GREETING_ZH)
        look.get_by_role("combobox", name="Launcher position").select_option("left")
        preview = admin.get_by_role("region", name="Preview")
        expect(preview).to_contain_text("Acme Help")
        assert background(preview.get_by_role("img", name="Launcher")) == ACCENT_RGB
        look.get_by_role("button", name="Save look").click()
        expect(look.get_by_role("status")).to_have_text("Widget look saved.")

        hours = admin.get_by_role("form", name="Business hours")
        expect(hours).to_contain_text("the config file's [desk] hours")
        hours.get_by_label("Time zone").fill("Asia/Shanghai")
        lines = hours.get_by_role("textbox", name="Weekly hours")
        lines.fill("mon-fry 09:00-18:00")
        hours.get_by_role("button", name="Save hours").click()
        expect(hours.get_by_role("status")).to_contain_text("'desk.hours': cannot read 'mon-fry 09:00-18:00'")
        screenshot(admin, "admin-settings-error.png")
        lines.fill(f"{closed_now()}\n")
        hours.get_by_role("textbox", name="Holidays").fill("2026-12-25")
        hours.get_by_role("button", name="Save hours").click()
        expect(hours.get_by_role("status")).to_have_text("Business hours saved.")
        expect(hours).to_contain_text("the hours saved here")
        screenshot(admin, "admin-settings.png")

        visitor = new_context(browser, locale="zh-CN")
        shop = visitor.new_page()
        shop.goto(f"{site}/plain.html")
        launcher = shop.get_by_role("button", name="在线客服")
        expect(launcher).to_be_visible()
        assert background(launcher) == ACCENT_RGB
        assert launcher.evaluate("(el) => el.getBoundingClientRect().left") < 100  # bottom left
        launcher.click()
        frame = shop.frame_locator("iframe[title='Chat']")
        expect(frame.get_by_role("heading", name="Acme Help")).to_be_visible()
        expect(frame.get_by_text(GREETING_ZH)).to_be_visible()
        screenshot(shop, "settings-widget-zh.png")

        branded = visitor.new_page()  # the embed's own attributes win over the settings
        branded.goto(f"{site}/branded.html")
        own = branded.get_by_role("button", name="在线客服")
        expect(own).to_be_visible()
        assert background(own) == "rgb(27, 127, 70)"
        own.click()
        expect(branded.frame_locator("iframe[title='Chat']").get_by_role("heading", name="Shop help")).to_be_visible()

        chat = open_chat(new_context(browser), desk.url)  # the admin is online, but the desk is closed
        chat.get_by_role("button", name="Talk to a person").click()
        expect(chat.get_by_role("log")).to_contain_text(LEAVE_MESSAGE_EN)
        expect(chat.get_by_role("region", name="Leave us a message")).to_be_visible()
        screenshot(chat, "settings-closed-leave-message.png")

        zh = sign_in_zh(browser, desk)
        zh.get_by_role("navigation", name="功能区").get_by_role("link", name="设置").click()
        zh_hours = zh.get_by_role("form", name="营业时间")
        expect(zh_hours.get_by_role("textbox", name="每周营业时间")).to_have_value(closed_now())
        expect(zh_hours.get_by_label("时区")).to_have_value("Asia/Shanghai")
        expect(zh_hours).to_contain_text("在此保存的营业时间")
        zh_look = zh.get_by_role("form", name="窗口外观")
        expect(zh_look.get_by_role("textbox", name="欢迎语（中文）")).to_have_value(GREETING_ZH)
        expect(zh.get_by_role("region", name="预览")).to_contain_text(GREETING_ZH)
        zh_hours.get_by_role("textbox", name="节假日").fill("12/25")
        zh_hours.get_by_role("button", name="保存营业时间").click()
        expect(zh_hours.get_by_role("status")).to_contain_text("保存失败：'desk.holidays'")
        screenshot(zh, "admin-settings-zh.png")
