"""The Users and tokens page: an admin adds an agent and sees its generated password once, the
agent signs in with it; a new role and disabling the account sign the agent's open console out
at once; an API token is shown once, works against ``/v1/models`` and stops when revoked; a bad
name is refused with the reason; the page in Chinese lists the accounts. Real server, Debian's
Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.engine.harness import call
from tests.web.admin.test_audit_page import sign_in_zh
from tests.web.browser import chromium, desk_running, new_context, screenshot, sign_in


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def signed_out(page: Page) -> None:
    expect(page.locator("#signin-error")).to_have_text("Your session has ended. Please sign in again.")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_admin_manages_accounts_and_tokens(browser: Browser, tmp_path: Path) -> None:
    with desk_running(tmp_path) as desk:
        admin = sign_in(new_context(browser), desk, "admin", desk.node.admin_password)
        admin.on("dialog", lambda dialog: dialog.accept())
        admin.get_by_role("navigation", name="Sections").get_by_role("link", name="Users").click()
        said = admin.get_by_role("region", name="Users").get_by_role("status")
        form = admin.get_by_role("form", name="Add an account")
        form.get_by_role("textbox", name="Account name").fill("two words")
        form.get_by_role("button", name="Add account").click()
        expect(said).to_contain_text("account name 'two words'")

        form.get_by_role("textbox", name="Account name").fill("mei")
        form.get_by_role("combobox", name="Role").select_option("agent")
        form.get_by_role("textbox", name="Display name").fill("Mei Chen")
        form.get_by_role("button", name="Add account").click()
        shown = admin.get_by_role("region", name="New password")
        expect(shown).to_contain_text("Password of mei (shown once")
        password = shown.locator("code").inner_text()
        assert len(password) >= 10, password
        accounts = admin.get_by_role("table", name="Accounts")
        expect(accounts.get_by_role("row").filter(has_text="mei")).to_contain_text("enabled")
        # The admin's own account can be neither disabled nor demoted from here.
        expect(admin.get_by_role("button", name="Disable admin")).to_be_disabled()
        expect(admin.get_by_role("button", name="Give admin a new password")).to_be_disabled()
        expect(admin.get_by_role("combobox", name="Role of admin")).to_be_disabled()

        mei = sign_in(new_context(browser), desk, "mei", password)
        admin.get_by_role("button", name="Refresh").click()
        expect(admin.get_by_role("table", name="Accounts").get_by_role("row").filter(has_text="mei")
               ).to_contain_text("Online")

        admin.get_by_role("combobox", name="Role of mei").select_option("supervisor")
        admin.get_by_role("button", name="Save changes to mei").click()
        expect(said).to_have_text("Saved mei.")
        signed_out(mei)  # a new role: the open console signs out at once
        mei.get_by_role("textbox", name="Username").fill("mei")
        mei.get_by_role("textbox", name="Password").fill(password)
        mei.get_by_role("button", name="Sign in").click()
        expect(mei.get_by_role("navigation", name="Sections").get_by_role("link", name="Reports")).to_be_visible()

        admin.get_by_role("button", name="Disable mei").click()
        expect(said).to_have_text("Disabled mei; their sessions have ended.")
        signed_out(mei)
        mei.get_by_role("textbox", name="Username").fill("mei")
        mei.get_by_role("textbox", name="Password").fill(password)
        mei.get_by_role("button", name="Sign in").click()
        expect(mei.locator("#signin-error")).to_have_text("Wrong username or password.")
        row = admin.get_by_role("table", name="Accounts").get_by_role("row").filter(has_text="mei")
        expect(row).to_contain_text("disabled")
        expect(row.get_by_role("combobox", name="Role of mei")).to_have_value("supervisor")

        tokens = admin.get_by_role("form", name="Create an API token")
        tokens.get_by_role("textbox", name="Token name (who or what it is for)").fill("nightly report")
        tokens.get_by_role("combobox", name="Role").select_option("api")
        tokens.get_by_role("button", name="Create token").click()
        secret = admin.get_by_role("region", name="New token").locator("code").inner_text()
        assert secret.startswith("apl_"), secret
        assert call(desk.url, "GET", "/v1/models", token=secret)[0] == 200
        listed = admin.get_by_role("table", name="Tokens").get_by_role("row").filter(has_text="nightly report")
        expect(listed).to_contain_text("active")
        screenshot(admin, "admin-users.png")

        admin.get_by_role("button", name=re.compile("^Revoke token nightly report")).click()
        expect(said).to_have_text("Revoked the token nightly report.")
        expect(listed).to_contain_text("revoked")
        assert call(desk.url, "GET", "/v1/models", token=secret)[0] == 401
        admin.reload()  # neither the password nor the token is shown again
        expect(admin.get_by_role("table", name="Tokens")).to_contain_text("nightly report")
        expect(admin.get_by_text(secret)).to_have_count(0)
        expect(admin.get_by_text(password)).to_have_count(0)

        zh = sign_in_zh(browser, desk)
        zh.get_by_role("navigation", name="功能区").get_by_role("link", name="用户").click()
        table = zh.get_by_role("table", name="账号")
        expect(table.get_by_role("row").filter(has_text="mei")).to_contain_text("已停用")
        expect(table.get_by_role("combobox", name="mei 的角色")).to_have_value("supervisor")
        expect(zh.get_by_role("table", name="令牌")).to_contain_text("已吊销")
        expect(zh.get_by_role("form", name="添加账号").get_by_role("button", name="添加账号")).to_be_visible()
        screenshot(zh, "admin-users-zh.png")
