"""An administrator sees the paired sites in the console's top bar, in English and Chinese:
in sync while connected, "not connected" once the other site is down, in sync again after it
returns. Two real nodes paired with the CLI, real QUIC, Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import Server
from tests.sync.test_sites import pair, site
from tests.web.browser import WAIT_MS, chromium, new_context, screenshot, sign_in


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def test_admin_sees_the_other_site_connected_then_down_then_back(browser: Browser, tmp_path: Path) -> None:
    a, b = site(tmp_path, "site-a"), site(tmp_path, "site-b")
    for node, _ in (a, b):  # notice a dead peer in seconds rather than the default 15
        node.edit_config("anti_entropy_s = 5.0", "anti_entropy_s = 1.0")
        node.edit_config("idle_timeout_s = 15.0", "idle_timeout_s = 4.0")
    pair(a, b)
    server_a, server_b = Server(a[0]).start(wait_ready=False), Server(b[0]).start(wait_ready=False)
    try:
        server_a.wait_ready()
        server_b.wait_ready()
        console = sign_in(new_context(browser), SimpleNamespace(url=server_a.url), "site-a-admin",  # type: ignore[arg-type]
                          a[0].admin_password)
        chip = console.get_by_role("status", name="Paired sites").locator(".site")
        expect(chip).to_have_text("site-b · in sync", timeout=2 * WAIT_MS)
        screenshot(console, "console-sites-in-sync.png")

        server_b.kill()
        expect(chip).to_have_text("site-b · not connected", timeout=3 * WAIT_MS)
        expect(chip).to_have_attribute("data-state", "down")

        zh = new_context(browser, locale="zh-CN").new_page()
        zh.goto(f"{server_a.url}/console")
        zh.locator("#signin-username").fill("site-b-admin")
        zh.locator("#signin-password").fill(b[0].admin_password)  # site B's admin, replicated to A
        zh.locator("#signin-submit").click()
        zh_chip = zh.get_by_role("status", name="已配对站点").locator(".site")
        expect(zh_chip).to_have_text("site-b · 未连接", timeout=2 * WAIT_MS)
        screenshot(zh, "console-sites-down-zh.png")

        server_b.start()
        expect(zh_chip).to_have_text("site-b · 已同步", timeout=4 * WAIT_MS)
        expect(chip).to_have_text("site-b · in sync", timeout=2 * WAIT_MS)
    finally:
        server_a.stop()
        server_b.stop()
