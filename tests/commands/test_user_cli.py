"""``appliance user add|list|passwd|disable|enable|capacity`` as an operator runs them: the real
CLI on a node made by ``appliance init``, and the console sign-in to prove what it did."""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import Node
from tests.desk.helpers import login, make_node, user_cli
from tests.engine.harness import one_line_error, running

GENERATED = re.compile(r"^added agent (\S+)  password: (\S+)  \(shown once\)$")


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Node:
    return make_node(tmp_path_factory.mktemp("usercli") / "node",
                     **{"default_capacity = 3": "default_capacity = 4"})


def listed(node: Node) -> dict[str, dict[str, Any]]:
    result = user_cli(node, "list", "--json")
    assert result.returncode == 0, result.stderr
    return {account["name"]: account for account in json.loads(result.stdout)}


def fails(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 2 with one readable line on stderr (no traceback) that contains ``words``."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    line = one_line_error(result.stderr)
    for word in words:
        assert word in line, line
    return line


def test_accounts_made_with_the_cli_sign_in_to_the_console(node: Node) -> None:
    generated = user_cli(node, "add", "alice", "--role", "agent")
    assert generated.returncode == 0, generated.stderr
    match = GENERATED.match(generated.stdout.strip())
    assert match and match.group(1) == "alice", generated.stdout
    password = match.group(2)
    assert len(password) >= 10, password

    chosen = user_cli(node, "add", "sam", "--role", "supervisor", "--display-name", "Sam Lee", "--password-stdin",
                      stdin="sams-own-password\n")
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stdout.strip() == "added supervisor sam", chosen.stdout  # nothing to show: the user chose it

    renewed = user_cli(node, "passwd", "alice")
    assert renewed.returncode == 0, renewed.stderr
    new = re.match(r"^new password for alice: (\S+)  \(shown once\)$", renewed.stdout.strip())
    assert new and new.group(1) != password, renewed.stdout

    # The password is shown once and nowhere else: not in the listing, not as a hash.
    for listing in (user_cli(node, "list", "--json").stdout,):
        assert password not in listing and new.group(1) not in listing and "scrypt" not in listing, listing
        assert "password" not in listing, listing

    with running(node) as server:
        assert login(server, "alice", password)[0] == 401
        status, body, _ = login(server, "alice", new.group(1))
        assert status == 200 and body["user"]["role"] == "agent", body
        status, body, _ = login(server, "sam", "sams-own-password")
        assert status == 200, body
        assert body["user"]["display_name"] == "Sam Lee" and body["user"]["role"] == "supervisor", body


def side_by_side(node: Node, *commands: tuple[tuple[str, ...], str | None]) -> list[subprocess.CompletedProcess[str]]:
    """Independent CLI runs at once (each is a Python start-up); ``(args, stdin)`` pairs."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda c: user_cli(node, *c[0], stdin=c[1]), commands))


def test_a_password_from_stdin_shorter_than_10_characters_is_refused(shared: Node) -> None:
    short, empty = side_by_side(shared, (("add", "shorty", "--role", "agent", "--password-stdin"), "short12\n"),
                                (("add", "empty", "--role", "agent", "--password-stdin"), ""))
    line = fails(short, "at least 10 characters")
    assert "short12" not in line  # the refused password is not echoed
    fails(empty, "at least 10")
    assert not {"shorty", "empty"} & set(listed(shared))


def test_list_shows_role_capacity_and_state_and_json(shared: Node) -> None:
    for result in side_by_side(shared, *[(("add", name, "--role", role, "--password-stdin"), f"{name}-long-password\n")
                                 for name, role in (("lisa", "agent"), ("mark", "admin"))]):
        assert result.returncode == 0, result.stderr
    accounts = listed(shared)
    assert accounts["lisa"] == {"name": "lisa", "display_name": "lisa", "role": "agent", "capacity": 4,
                                "disabled": False, "presence": "offline", "load": 0}, accounts["lisa"]
    assert accounts["mark"]["role"] == "admin"
    assert accounts["admin"]["role"] == "admin"  # the one `appliance init` made

    table = user_cli(shared, "list").stdout.splitlines()
    assert table[0].split() == ["name", "role", "capacity", "state"], table
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["lisa"] == ["lisa", "agent", "4", "enabled"], table  # desk.default_capacity = 4
    assert rows["mark"] == ["mark", "admin", "4", "enabled"], table


def test_adding_a_name_twice_is_exit_2_with_a_clear_line(shared: Node) -> None:
    first = user_cli(shared, "add", "dupe", "--role", "agent", "--capacity", "2", "--password-stdin",
                     stdin="the-first-password\n")
    assert first.returncode == 0, first.stderr
    fails(user_cli(shared, "add", "dupe", "--role", "admin", "--password-stdin", stdin="the-other-password\n"),
          "'dupe'", "exists")
    account = listed(shared)["dupe"]
    assert (account["role"], account["capacity"]) == ("agent", 2)  # the first one is untouched


def test_passwd_disable_enable_and_capacity(shared: Node) -> None:
    assert user_cli(shared, "add", "kim", "--role", "agent", "--password-stdin",
                    stdin="kims-first-password\n").returncode == 0
    changed = user_cli(shared, "passwd", "kim", "--password-stdin", stdin="kims-second-password\n")
    assert changed.returncode == 0 and changed.stdout.strip() == "new password for kim set", changed

    disabled = user_cli(shared, "disable", "kim")
    assert disabled.returncode == 0 and "disabled kim" in disabled.stdout, disabled
    assert re.search(r"^kim\s+agent\s+4\s+disabled$", user_cli(shared, "list").stdout, re.M)
    enabled = user_cli(shared, "enable", "kim")
    assert enabled.returncode == 0 and "enabled kim" in enabled.stdout, enabled
    capacity = user_cli(shared, "capacity", "kim", "7")
    assert capacity.returncode == 0 and "kim now handles up to 7" in capacity.stdout, capacity

    tiny, too_many, negative = side_by_side(shared, (("passwd", "kim", "--password-stdin"), "tiny\n"),
                                            (("capacity", "kim", "101"), None),
                                            (("add", "lee", "--role", "agent", "--capacity", "-1"), None))
    fails(tiny, "at least 10")
    fails(too_many, "between 0 and 100")
    fails(negative, "between 0 and 100")
    accounts = listed(shared)
    assert (accounts["kim"]["disabled"], accounts["kim"]["capacity"]) == (False, 7), accounts["kim"]
    assert "lee" not in accounts


def test_an_unknown_name_is_exit_2_naming_it(shared: Node) -> None:
    commands = [("passwd", "ghost", "--password-stdin"), ("disable", "ghost"), ("enable", "ghost"),
                ("capacity", "ghost", "2")]
    results = side_by_side(shared, *[(args, "a-long-enough-password\n") for args in commands])
    for args, result in zip(commands, results, strict=True):
        line = fails(result, "'ghost'")
        assert "no account" in line, (args, line)
    assert "ghost" not in listed(shared)


def test_names_with_spaces_colons_or_slashes_are_refused(shared: Node) -> None:
    bad = ["two words", "agent:x", "a/b"]
    for result in side_by_side(shared, *[(("add", name, "--role", "agent"), None) for name in bad]):
        fails(result, "account name")
    assert not set(bad) & set(listed(shared))
