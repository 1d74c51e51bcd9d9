"""The intents page: an admin tries a sentence and sees its intent and confidence, teaches an
intent an English and a Chinese example, tries a paraphrase that now reaches it, sees a visitor's
turn (HTTP visitor API) take the new route, and removes the examples again; the page in
Chinese. Real server, Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.desk.helpers import chat
from tests.web.admin.test_audit_page import sign_in_zh
from tests.web.browser import chromium, desk_running, new_context, screenshot, sign_in

PARAPHRASE = "I would like to file a complaint with your manager"  # no example says this
TAUGHT = ("I want to complain to your manager", "我要投诉你们经理")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def try_sentence(page: Page, text: str, *, form: str = "Try a sentence", sentence: str = "Sentence",
                 button: str = "Try") -> None:
    tried = page.get_by_role("form", name=form)
    tried.get_by_role("textbox", name=sentence).fill(text)
    tried.get_by_role("button", name=button).click()


def cell(table: Locator, label: str) -> Locator:
    """The value beside the row header ``label`` of a two-column table."""
    header = table.page.get_by_role("rowheader", name=label, exact=True)
    return table.get_by_role("row").filter(has=header).get_by_role("cell")


def test_admin_teaches_an_intent_and_the_next_visitor_is_routed_by_it(browser: Browser, tmp_path: Path) -> None:
    with desk_running(tmp_path) as desk:
        page = sign_in(new_context(browser), desk, "admin", desk.node.admin_password)
        page.get_by_role("navigation", name="Sections").get_by_role("link", name="Intents").click()
        expect(page.get_by_role("heading", name="Intents and rules")).to_be_visible()
        result = page.get_by_role("table", name="Result")

        try_sentence(page, "I need to talk to a person")
        expect(cell(result, "Intent")).to_have_text("human")
        expect(cell(result, "Confidence")).to_contain_text("%")
        expect(cell(result, "In scope")).to_have_text("In scope")
        expect(page.get_by_role("table", name="Top intents").get_by_role("row")).to_have_count(3)  # head + 2

        try_sentence(page, PARAPHRASE)
        expect(cell(result, "In scope")).to_contain_text("Out of scope")
        before = chat(desk.server, PARAPHRASE)
        assert before["reply"]["source"] == "llm", before  # the bot answers it itself

        add = page.get_by_role("form", name="Add an example")
        for text in TAUGHT:
            add.get_by_role("combobox", name="Intent").fill("human")
            add.get_by_role("textbox", name="Example sentence").fill(text)
            add.get_by_role("button", name="Add example").click()
            expect(page.get_by_role("status").filter(has_text=f"Added “{text}” to human")).to_be_visible()
        page.locator("summary", has=page.get_by_text("human", exact=True)).click()  # open its examples
        examples = page.get_by_role("table", name="Examples of human")
        for text in TAUGHT:
            expect(examples.get_by_role("row").filter(has_text=text)).to_contain_text("console")

        try_sentence(page, PARAPHRASE)
        expect(cell(result, "In scope")).to_have_text("In scope")
        expect(cell(result, "A turn would")).to_contain_text("act on the intent (hand off to a person)")
        try_sentence(page, "我想投诉经理")
        expect(cell(result, "Intent")).to_have_text("human")
        expect(cell(result, "In scope")).to_have_text("In scope")
        screenshot(page, "admin-intents.png")

        turn = chat(desk.server, PARAPHRASE)  # the same words: the cached answer is not served
        assert turn["reply"]["source"] == "handoff", turn  # handed to a person: the admin is online

        page.on("dialog", lambda dialog: dialog.accept())
        for text in TAUGHT:
            examples.get_by_role("button", name=f"Remove the example “{text}” of human").click()
            expect(page.get_by_role("status").filter(has_text=f"Removed “{text}” from human")).to_be_visible()
        expect(examples).not_to_contain_text("console")
        try_sentence(page, PARAPHRASE)
        expect(cell(result, "In scope")).to_contain_text("Out of scope")

        zh = sign_in_zh(browser, desk)
        zh.get_by_role("navigation", name="功能区").get_by_role("link", name="意图").click()
        expect(zh.get_by_role("heading", name="意图与规则")).to_be_visible()
        try_sentence(zh, "请帮我转人工", form="试一句话", sentence="句子", button="试一试")
        zh_result = zh.get_by_role("table", name="结果")
        expect(cell(zh_result, "意图")).to_have_text("human")
        expect(cell(zh_result, "在范围内")).to_have_text("在范围内")
        expect(cell(zh_result, "对话中将会")).to_have_text("按意图处理（转人工）")
        zh_add = zh.get_by_role("form", name="添加例句")
        zh_add.get_by_role("combobox", name="意图").fill("human")
        zh_add.get_by_role("textbox", name="例句").fill("转人工")
        zh_add.get_by_role("button", name="添加例句").click()
        expect(zh.get_by_role("status").filter(has_text="操作失败：text: '转人工' is already an example of this intent")
               ).to_be_visible()
        rules = zh.get_by_role("region", name="规则").get_by_role("table", name="规则")
        expect(rules).to_contain_text("配置中没有规则。")
        screenshot(zh, "admin-intents-zh.png")
