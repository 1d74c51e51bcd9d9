"""The live desk in a real browser: a visitor on /chat (or inside the widget on someone's page) and
agents on /console, each in their own browser context, against a real node and server whose bot
answers through the mock upstream.

What is asserted is what a person at either screen would notice: text appearing in the
conversation, banners, buttons, forms, inbox rows and tab counts, desktop notifications.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.web.browser import (
    RECONNECT_WAIT_MS,
    Desk,
    add_agent,
    chromium,
    closed_all_week_but_one,
    conversation_log,
    desk_running,
    host_site,
    inbox_row,
    message_box,
    new_context,
    open_chat,
    screenshot,
    send,
    shown_messages,
    sign_in,
    stored_messages,
    tab,
    wait_connected,
)

HANDOFF_EN = "I'm connecting you with a human agent, who will reply here shortly."
LEAVE_MESSAGE_EN = "No agent is available right now."
HANDED_BACK_EN = "You are chatting with our virtual assistant again."


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    """A fresh node (its bot answering through the mock upstream) and its server, per test."""
    with desk_running(tmp_path / "desk") as running:
        yield running


def answer_to(question: str) -> str:
    """The mock upstream's deterministic answer."""
    return f"Mock answer about: {question}"


def test_visitor_and_agent_talk_live_then_the_bot_takes_over_again(browser: Browser, desk: Desk) -> None:
    agent_side = new_context(browser, notifications=True)
    visitor_side = new_context(browser)
    try:
        # The agent is at the desk first (so online), watching the queue: empty for now.
        console = sign_in(agent_side, desk, "admin", desk.node.admin_password)
        tab(console, "Queue").click()
        expect(console.get_by_text("No conversations here.")).to_be_visible()

        chat = open_chat(visitor_side, desk.url)
        log = conversation_log(chat)
        question = "How do I reset my card PIN?"
        desk.up.set(mode="slow_stream", chunk_delay_ms=200, times=1)  # words arrive one by one (2 s in all)
        send(chat, question)
        expect(log.get_by_text(question, exact=True)).to_be_visible()
        # Streamed: a draft answer grows in the log before the final one replaces it.
        draft = log.locator("[aria-busy=true]")
        expect(draft).to_contain_text("Mock")
        expect(log.get_by_text(answer_to(question), exact=True)).to_be_visible()
        expect(draft).to_have_count(0)

        chat.get_by_role("button", name="Talk to a person").click()
        expect(log.get_by_text(HANDOFF_EN, exact=True)).to_be_visible()
        expect(chat.get_by_role("button", name="Talk to a person")).to_be_hidden()

        # It arrives at the desk live: the row appears in the queue and a notification is shown.
        row = inbox_row(console, question)
        expect(row).to_be_visible()
        console.wait_for_function("() => window.__notifications.length > 0")
        notices = console.evaluate("() => window.__notifications")
        assert any(question in notice["body"] for notice in notices), notices
        assert {notice["title"] for notice in notices} <= {
            "A visitor is waiting for an agent", "A conversation was assigned to you"}, notices

        row.click()
        console.get_by_role("button", name="Take over", exact=True).click()
        expect(tab(console, "Mine")).to_have_text(re.compile(r"Mine\s+1"))
        expect(tab(console, "Queue")).to_have_text(re.compile(r"Queue\s+0"))
        expect(row).to_have_count(0)  # gone from the Queue tab ...
        tab(console, "Mine").click()
        expect(row).to_be_visible()   # ... and under Mine
        expect(chat.locator("#banner")).to_contain_text("You are chatting with")
        expect(chat.get_by_role("button", name="Take over")).to_have_count(0)
        bot_calls = desk.up.requests

        # Live both ways, no reload on either side.
        visitor_line = "Are you a real person?"
        send(chat, visitor_line)
        # Delivered and answered by the server (with no bot reply: a human owns the conversation).
        own = log.locator("[data-own]").filter(has_text=visitor_line)
        expect(own).to_have_attribute("data-own", "sent")
        agent_log = console.get_by_role("log", name="Messages")
        expect(agent_log.get_by_text(visitor_line, exact=True)).to_be_visible()
        agent_line = "Yes, I am a person and I will reset it with you."
        reply_box = console.get_by_role("textbox", name="Reply")
        reply_box.fill(agent_line)
        reply_box.press("Enter")
        expect(log.get_by_text(agent_line, exact=True)).to_be_visible()
        expect(agent_log.get_by_text(agent_line, exact=True)).to_be_visible()
        expect(reply_box).to_have_value("")

        # The bot stayed silent while the agent owned the conversation.
        shown = shown_messages(chat)
        after_takeover = shown[[text for _, text in shown].index(visitor_line):]
        assert [role for role, _ in after_takeover] == ["visitor", "agent"], shown
        assert desk.up.requests == bot_calls
        screenshot(console, "desk-console-live-conversation.png")
        screenshot(chat, "desk-chat-with-agent.png")

        console.get_by_role("button", name="Hand back to bot", exact=True).click()
        expect(log.get_by_text(HANDED_BACK_EN, exact=True)).to_be_visible()
        expect(chat.get_by_role("button", name="Talk to a person")).to_be_visible()
        follow_up = "What are the card fees?"
        send(chat, follow_up)
        expect(log.get_by_text(answer_to(follow_up), exact=True)).to_be_visible()
        assert desk.up.requests > bot_calls
        expect(agent_log.get_by_text(answer_to(follow_up), exact=True)).to_be_visible()
    finally:
        agent_side.close()
        visitor_side.close()


def test_third_visitor_waits_in_line_until_an_agent_is_free(browser: Browser, desk: Desk) -> None:
    agents = {"alice": "Alice", "bob": "Bob"}
    for name, display in agents.items():
        add_agent(desk.node, name, f"{name}-secret-pass-42", capacity=1, display_name=display)
    contexts = [new_context(browser) for _ in range(5)]
    try:
        consoles = {name: sign_in(contexts[i], desk, name, f"{name}-secret-pass-42")
                    for i, name in enumerate(agents)}
        for console in consoles.values():
            tab(console, "Mine").click()

        asks = ["My order 1001 never arrived", "I want a refund for order 1002", "Order 1003 came broken"]
        chats = []
        for context, ask in zip(contexts[2:], asks, strict=True):
            chat = open_chat(context, desk.url)
            send(chat, ask)
            expect(conversation_log(chat).get_by_text(answer_to(ask), exact=True)).to_be_visible()
            chat.get_by_role("button", name="Talk to a person").click()
            expect(chat.locator("#banner")).to_be_visible()
            chats.append(chat)

        # The first two are each routed to one of the agents; the third waits, first in line.
        for chat in chats[:2]:
            expect(chat.locator("#banner")).to_have_text(re.compile(r"^(Alice|Bob) will be with you shortly$"))
        assert chats[0].locator("#banner").inner_text() != chats[1].locator("#banner").inner_text()
        third = chats[2].locator("#banner")
        expect(third).to_contain_text("You are number 1 in the queue")
        for console in consoles.values():
            expect(tab(console, "Mine")).to_have_text(re.compile(r"Mine\s+1"))
            expect(inbox_row(console, asks[2])).to_have_count(0)
        screenshot(chats[2], "desk-chat-queue-position.png")

        # Whoever has the first visitor resolves it; the third visitor goes to them.
        first_banner = chats[0].locator("#banner").inner_text()
        freed = next(name for name, display in agents.items() if first_banner.startswith(display))
        console = consoles[freed]
        inbox_row(console, asks[0]).click()
        console.get_by_role("button", name="Resolve", exact=True).click()
        expect(chats[0].locator("#banner")).to_have_text("This conversation has ended.")
        expect(chats[0].get_by_role("radiogroup", name="Rating")).to_be_visible()

        expect(third).to_have_text(f"{agents[freed]} will be with you shortly")
        expect(inbox_row(console, asks[2])).to_be_visible()
        expect(inbox_row(console, asks[0])).to_have_count(0)
        other = consoles[next(name for name in agents if name != freed)]
        expect(inbox_row(other, asks[2])).to_have_count(0)
    finally:
        for context in contexts:
            context.close()


def test_off_hours_visitor_leaves_a_message_and_gets_the_answer(browser: Browser, tmp_path: Path) -> None:
    with desk_running(tmp_path / "desk", hours=closed_all_week_but_one()) as desk:
        visitor_side = new_context(browser)
        agent_side = new_context(browser)
        try:
            chat = open_chat(visitor_side, desk.url)
            log = conversation_log(chat)
            ask = "Can I raise my card limit?"
            send(chat, ask)
            expect(log.get_by_text(answer_to(ask), exact=True)).to_be_visible()
            chat.get_by_role("button", name="Talk to a person").click()
            expect(log).to_contain_text(LEAVE_MESSAGE_EN)

            left = "Please call me about raising my card limit to 5000."
            chat.get_by_role("textbox", name="Name").fill("Mei Lin")
            chat.get_by_role("textbox", name="Email or phone").fill("mei@example.com")
            chat.get_by_role("textbox", name="Your message").fill(left)
            chat.get_by_role("button", name="Leave a message").click()
            expect(chat.get_by_text("Thank you! We received your message")).to_be_visible()
            expect(chat.get_by_role("button", name="Leave a message")).to_be_hidden()

            console = sign_in(agent_side, desk, "admin", desk.node.admin_password)
            tickets = tab(console, "Tickets")
            expect(tickets).to_have_text(re.compile(r"Tickets\s+1"))
            tickets.click()
            expect(console.get_by_role("button", name=re.compile("^Mei Lin"))).to_be_visible()
            ticket_view = console.get_by_role("main")
            expect(ticket_view.get_by_text(left, exact=True)).to_be_visible()
            expect(ticket_view.get_by_text("mei@example.com")).to_be_visible()
            answer = "Yes: open the app, choose Cards, then Limits, and set 5000."
            console.get_by_role("textbox", name="Answer").fill(answer)
            console.get_by_role("button", name="Send answer").click()
            expect(ticket_view.get_by_text(answer, exact=True)).to_be_visible()
            expect(console.get_by_role("button", name="Send answer")).to_have_count(0)
            expect(tickets).to_have_text(re.compile(r"Tickets\s+0"))
            screenshot(console, "desk-console-ticket-answered.png")

            chat.reload()
            wait_connected(chat)
            expect(log).to_contain_text(answer)
            expect(log.get_by_text(ask, exact=True)).to_be_visible()
        finally:
            visitor_side.close()
            agent_side.close()


def test_history_survives_a_reload_and_a_server_restart(browser: Browser, desk: Desk) -> None:
    context = new_context(browser)
    try:
        chat = open_chat(context, desk.url)
        log = conversation_log(chat)
        for question in ["What are the card fees?", "How long does a transfer take?"]:
            send(chat, question)
            expect(log.get_by_text(answer_to(question), exact=True)).to_be_visible()
        before = shown_messages(chat)
        assert [role for role, _ in before] == ["visitor", "bot", "visitor", "bot"], before

        chat.reload()
        wait_connected(chat)
        bubbles = chat.locator("#log .msg")
        expect(bubbles).to_have_count(len(before))
        assert shown_messages(chat) == before

        # The server goes away while the page stays open; a message typed meanwhile waits.
        connection = chat.locator("#conn")
        desk.server.stop()
        expect(connection).to_have_text("Reconnecting…")
        during = "Are you still there?"
        send(chat, during)
        expect(log.get_by_text(during, exact=True)).to_be_visible()
        expect(log.get_by_text("Waiting for connection…")).to_be_visible()

        desk.server.start()
        wait_connected(chat, timeout=RECONNECT_WAIT_MS)
        expect(connection).to_have_text("")
        expect(log.get_by_text(answer_to(during), exact=True)).to_be_visible()
        expect(log.get_by_text("Waiting for connection…")).to_have_count(0)

        shown = shown_messages(chat)
        stored = [(m["role"], m["text"]) for m in stored_messages(desk, chat)]
        assert shown == stored
        assert [text for role, text in shown if role == "visitor"] == [
            "What are the card fees?", "How long does a transfer take?", during]
        assert len(shown) == 6, shown
    finally:
        context.close()


XSS = '<img src=x onerror="window.__xss=1">'


def test_markup_in_a_message_is_shown_as_text_and_runs_nothing(browser: Browser, desk: Desk) -> None:
    agent_side = new_context(browser)
    visitor_side = new_context(browser)
    try:
        console = sign_in(agent_side, desk, "admin", desk.node.admin_password)
        chat = open_chat(visitor_side, desk.url)
        log = conversation_log(chat)
        send(chat, XSS)
        expect(log.get_by_text(XSS, exact=True)).to_be_visible()
        expect(log.get_by_text(answer_to(XSS), exact=True)).to_be_visible()  # the bot quoting it, as text

        row = inbox_row(console, XSS)
        expect(row).to_be_visible()
        row.click()
        agent_log = console.get_by_role("log", name="Messages")
        expect(agent_log.get_by_text(XSS, exact=True)).to_be_visible()
        expect(console.get_by_role("heading", name=XSS, exact=True)).to_be_visible()
        for page in (chat, console):
            assert page.evaluate("() => window.__xss") is None
            expect(page.locator('img[src="x"]')).to_have_count(0)
    finally:
        agent_side.close()
        visitor_side.close()


def test_chinese_browser_gets_the_chinese_pages_and_bot(browser: Browser, desk: Desk) -> None:
    context = new_context(browser, locale="zh-CN")
    try:
        chat = open_chat(context, desk.url, query="")
        expect(chat.get_by_role("button", name="转人工")).to_be_visible()
        expect(message_box(chat, "消息")).to_be_visible()
        expect(chat.get_by_role("button", name="发送")).to_be_visible()
        expect(chat.get_by_role("button", name="Talk to a person")).to_have_count(0)

        log = conversation_log(chat)
        send(chat, "你好", box="消息")
        expect(log.get_by_text("您好！请问有什么可以帮您？", exact=True)).to_be_visible()
        chat.get_by_role("button", name="转人工").click()
        # Nobody is at the desk: the Chinese leave-a-message sentence, and the form in Chinese.
        expect(log.get_by_text("目前没有客服在线。请在这里留下您的问题和联系方式，我们会尽快与您联系。",
                               exact=True)).to_be_visible()
        for label in ["姓名", "邮箱或手机号", "留言内容"]:
            expect(chat.get_by_role("textbox", name=label, exact=True)).to_be_visible()
        expect(chat.get_by_role("button", name="提交留言")).to_be_visible()
        screenshot(chat, "desk-chat-zh.png")

        console = context.new_page()
        console.goto(f"{desk.url}/console")
        expect(console.get_by_role("button", name="登录")).to_be_visible()
        expect(console.get_by_role("textbox", name="用户名")).to_be_visible()
        expect(console.get_by_role("textbox", name="密码")).to_be_visible()
        expect(console.get_by_role("button", name="Sign in")).to_have_count(0)
    finally:
        context.close()


@pytest.fixture
def host_page(desk: Desk) -> Iterator[str]:
    """Somebody's web site on another origin, with the widget's one script tag."""
    page = (f'<p>Welcome to the shop.</p>'
            f'<script src="{desk.url}/widget.js" data-title="Help" data-lang="en"></script>')
    with host_site({"/shop.html": page}) as site:
        yield f"{site}/shop.html"


def test_widget_on_a_host_page_opens_a_working_chat(browser: Browser, desk: Desk, host_page: str) -> None:
    context = new_context(browser)
    try:
        page = context.new_page()
        page.goto(host_page)
        launcher = page.get_by_role("button", name="Chat with us")
        expect(launcher).to_be_visible()
        expect(page.locator("iframe")).to_have_count(0)  # nothing loads before the visitor asks
        launcher.click()
        expect(launcher).to_have_attribute("aria-expanded", "true")
        frame = page.frame_locator("iframe[title='Chat']")
        expect(frame.get_by_role("heading", name="Help")).to_be_visible()
        box = frame.get_by_role("textbox", name="Message", exact=True)
        question = "Do you ship abroad?"
        box.fill(question)
        box.press("Enter")
        log = frame.get_by_role("log")
        expect(log.get_by_text(question, exact=True)).to_be_visible()
        expect(log.get_by_text(answer_to(question), exact=True)).to_be_visible()
        screenshot(page, "desk-widget-open.png")

        frame.get_by_role("button", name="Close chat").click()
        expect(page.locator("iframe")).to_be_hidden()
        expect(launcher).to_have_attribute("aria-expanded", "false")
    finally:
        context.close()


@pytest.mark.parametrize(("query", "locale", "box", "too_fast"), [
    ("?lang=en", "en-US", "Message", "You are sending messages too quickly"),
    ("?lang=zh", "zh-CN", "消息", "您发送得太快了"),
])
def test_a_visitor_sending_too_fast_is_told_so_in_their_language(
        browser: Browser, tmp_path: Path, query: str, locale: str, box: str, too_fast: str) -> None:
    with desk_running(tmp_path / "desk", settings={"chat_per_visitor_per_minute = 20":
                                                   "chat_per_visitor_per_minute = 2"}) as desk:
        context = new_context(browser, locale=locale)
        try:
            chat = open_chat(context, desk.url, query=query)
            log = conversation_log(chat)
            # The first message starts the conversation (counted per address); two more may follow.
            for n in range(3):
                send(chat, f"question {n}", box=box)
                expect(log.get_by_text(answer_to(f"question {n}"), exact=True)).to_be_visible()
            send(chat, "question 3", box=box)
            expect(log).to_contain_text(too_fast)
            expect(log.get_by_text(answer_to("question 3"), exact=True)).to_have_count(0)
        finally:
            context.close()
