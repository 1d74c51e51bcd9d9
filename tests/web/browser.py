"""What the real-browser tests of the live desk share: one Chromium per module, a node with a mock
upstream and a running server per test, and the few steps every test takes (sign in to the
console, open the visitor chat, send a message, read the log).

Chromium is Debian's (``/usr/bin/chromium``); no browser is ever downloaded. The fixtures live in
the test module; these are plain functions and context managers. The pages are served with a CSP
that forbids string evaluation, so everything here reads the page through locators or
function-form ``evaluate``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import CLI, ROOT, Node, Server, init_node
from tests.engine.harness import Upstream, call

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
WAIT_MS = 15_000  # a busy two-core machine: every expectation waits this long
RECONNECT_WAIT_MS = 45_000  # a restarted server (5 s to ready) plus the page's 1/2/5/10 s back-off

expect.set_options(timeout=WAIT_MS)

# Records every desktop notification the console shows, with permission already granted.
NOTIFICATION_STUB = """
(() => {
  const shown = [];
  class RecordingNotification {
    constructor(title, options = {}) {
      shown.push({ title: String(title), body: String(options.body || "") });
      this.title = title;
      this.onclick = null;
    }
    close() {}
    static get permission() { return "granted"; }
    static requestPermission() { return Promise.resolve("granted"); }
  }
  Object.defineProperty(window, "__notifications", { value: shown });
  window.Notification = RecordingNotification;
})();
"""


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless (the test module shares one)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Desk:
    node: Node
    server: Server
    up: Upstream
    dir: Path

    @property
    def url(self) -> str:
        return self.server.url


def closed_all_week_but_one() -> str:
    """A ``desk.hours`` value under which the desk is closed right now (UTC): open one whole day,
    three days from today, so that neither today nor the next day is an opening day."""
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    other = days[(dt.datetime.now(dt.UTC).weekday() + 3) % 7]
    return f'hours = ["{other} 00:00-24:00"]'


@contextmanager
def desk_running(directory: Path, *, hours: str | None = None, settings: dict[str, str] | None = None
                 ) -> Iterator[Desk]:
    """A fresh node whose bot answers through the mock upstream (fast, deterministic), served;
    ``settings`` replace config lines (``{old: new}``)."""
    directory.mkdir(parents=True, exist_ok=True)
    node = init_node(directory / "node")
    if hours is not None:
        node.edit_config("hours = []", hours)
    for old, new in (settings or {}).items():
        node.edit_config(old, new)
    up = Upstream(directory, "up1")
    try:
        up.add_to(node)
        node.cli("model", "use", "up1")
        server = Server(node).start()
        try:
            yield Desk(node, server, up, directory)
        finally:
            server.stop()
    finally:
        up.stop()


def restart(server: Server) -> None:
    """``appliance serve`` again on the same port (the pages keep their URL and reconnect)."""
    server.stop()
    server.start()


def add_agent(node: Node, name: str, password: str, *, capacity: int, display_name: str | None = None) -> None:
    args = [*CLI, "--config", str(node.config), "user", "add", name, "--role", "agent",
            "--capacity", str(capacity), "--password-stdin"]
    if display_name:
        args += ["--display-name", display_name]
    result = subprocess.run(args, input=password + "\n", capture_output=True, text=True, timeout=120,
                            cwd=ROOT, env=dict(os.environ))
    assert result.returncode == 0, result.stderr


def new_context(browser: Browser, *, locale: str = "en-US", notifications: bool = False) -> BrowserContext:
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 860})
    context.set_default_timeout(WAIT_MS)
    if notifications:
        context.add_init_script(NOTIFICATION_STUB)
    return context


def sign_in(context: BrowserContext, desk: Desk, username: str, password: str, *, query: str = "") -> Page:
    """Open the console and sign in; returns once the console's live connection is up (then the
    agent counts as online)."""
    page = context.new_page()
    page.goto(f"{desk.url}/console{query}")
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator("#conn")).to_have_text("Live")
    return page


def open_chat(context: BrowserContext, url: str, *, query: str = "?lang=en") -> Page:
    page = context.new_page()
    page.goto(f"{url}/chat{query}")
    wait_connected(page)
    return page


def wait_connected(page: Page, timeout: float = WAIT_MS) -> None:
    expect(page.locator("#conn")).to_have_attribute("data-state", "open", timeout=timeout)


def message_box(page: Page, name: str = "Message") -> Any:
    return page.get_by_role("textbox", name=name, exact=True)


def send(page: Page, text: str, *, box: str = "Message") -> None:
    field = message_box(page, box)
    field.fill(text)
    field.press("Enter")


def conversation_log(page: Page) -> Any:
    return page.get_by_role("log")


def shown_messages(page: Page) -> list[tuple[str, str]]:
    """(role, text) of every message bubble in the visitor's log, in order."""
    rows: list[list[str]] = page.locator("#log").evaluate(
        """(log) => [...log.querySelectorAll(".msg")].map((item) => [
             (/msg--(\\w+)/.exec(item.className) || [, "?"])[1],
             item.querySelector(".msg__text").textContent])""")
    return [(role, text) for role, text in rows]


def visitor_token(page: Page) -> str:
    token: str = page.evaluate("() => localStorage.getItem('appliance.visitor_token') || ''")
    return token


def conversation_id(page: Page) -> str:
    value: str = page.evaluate("() => localStorage.getItem('appliance.conversation_id') || ''")
    return value


def stored_messages(desk: Desk, page: Page) -> list[dict[str, Any]]:
    """The conversation as the server has it (GET .../messages with the page's own token)."""
    status, body = call(desk.url, "GET", f"/api/v1/conversations/{conversation_id(page)}/messages",
                        token=visitor_token(page))
    assert status == 200, body
    return list(body["messages"])


def inbox_row(page: Page, first_message: str) -> Any:
    """The inbox row (a button) whose name starts with the visitor's first message."""
    return page.get_by_role("button", name=re.compile("^" + re.escape(first_message)))


def tab(page: Page, name: str) -> Any:
    return page.get_by_role("tab", name=re.compile(rf"^{re.escape(name)} \d+$"))


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


@contextmanager
def host_site(pages: dict[str, str], *, lang: str = "en") -> Iterator[str]:
    """Somebody's web site on another origin: each path of ``pages`` a page whose body is its
    HTML (a widget's script tag, say); yields the site's base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            html = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>Shop</title></head>'
                    f'<body><h1>Our shop</h1>{pages.get(self.path, "")}</body></html>').encode()
            self.send_response(200 if self.path in pages else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(html)))
            self.end_headers()
            self.wfile.write(html)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
