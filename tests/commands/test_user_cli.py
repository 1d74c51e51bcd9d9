"""``appliance user add|list|passwd|disable|enable|capacity`` as an operator runs them: the real
CLI on a node made by ``appliance init``, and the console sign-in to prove what it did.

Each CLI run is a Python start-up (about a second); runs that do not depend on each other go
side by side (the store takes concurrent writers)."""

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

GENERATED = re.compile(r"^added (\S+) (\S+)  password: (\S+)  \(shown once\)$")
Run = tuple[tuple[str, ...], str | None]  # (arguments after `user`, standard input)


def side_by_side(node: Node, *runs: Run) -> list[subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda run: user_cli(node, *run[0], stdin=run[1]), runs))


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


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Node:
    """A node whose desk.default_capacity is 4, with three accounts added with --password-stdin."""
    node = make_node(tmp_path_factory.mktemp("usercli") / "node", **{"default_capacity = 3": "default_capacity = 4"})
    added = side_by_side(node, *[(("add", name, "--role", role, *extra, "--password-stdin"), f"{name}-long-password\n")
                                 for name, role, *extra in (("lisa", "admin"), ("dupe", "agent", "--capacity", "2"),
                                                            ("kim", "agent"))])
    for result, role_name in zip(added, ("admin lisa", "agent dupe", "agent kim"), strict=True):
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"added {role_name}", result.stdout  # no password shown: the user chose it
    return node


def test_accounts_made_with_the_cli_sign_in_to_the_console(node: Node) -> None:
    generated, chosen = side_by_side(
        node, (("add", "alice", "--role", "agent"), None),
        (("add", "sam", "--role", "supervisor", "--display-name", "Sam Lee", "--password-stdin"), "sams-password\n"))
    assert generated.returncode == 0, generated.stderr
    match = GENERATED.match(generated.stdout.strip())
    assert match and match.group(1, 2) == ("agent", "alice"), generated.stdout
    password = match.group(3)
    assert len(password) >= 10, password
    assert chosen.returncode == 0 and chosen.stdout.strip() == "added supervisor sam", chosen

    renewed = user_cli(node, "passwd", "alice")
    assert renewed.returncode == 0, renewed.stderr
    new = re.match(r"^new password for alice: (\S+)  \(shown once\)$", renewed.stdout.strip())
    assert new and new.group(1) != password, renewed.stdout

    # A password is shown once and nowhere else: not in the listing, not as a hash.
    listing = user_cli(node, "list", "--json").stdout
    assert password not in listing and new.group(1) not in listing, listing
    assert "password" not in listing and "scrypt" not in listing, listing

    with running(node) as server:
        assert login(server, "alice", password)[0] == 401  # the first one no longer works
        status, body, _ = login(server, "alice", new.group(1))
        assert status == 200 and body["user"]["role"] == "agent", body
        status, body, _ = login(server, "sam", "sams-password")
        assert status == 200, body
        assert body["user"]["display_name"] == "Sam Lee" and body["user"]["role"] == "supervisor", body


def test_a_password_from_stdin_shorter_than_10_characters_is_refused(shared: Node) -> None:
    short = user_cli(shared, "add", "shorty", "--role", "agent", "--password-stdin", stdin="short12\n")
    line = fails(short, "at least 10 characters")
    assert "short12" not in line  # the refused password is not echoed
    assert "shorty" not in listed(shared)


def test_list_shows_role_capacity_and_state_and_json(shared: Node) -> None:
    as_json, as_table = side_by_side(shared, (("list", "--json"), None), (("list",), None))
    accounts = {a["name"]: a for a in json.loads(as_json.stdout)}
    assert accounts["lisa"] == {"name": "lisa", "display_name": "lisa", "role": "admin", "capacity": 4,
                                "disabled": False, "presence": "offline", "load": 0}, accounts["lisa"]
    assert accounts["dupe"]["role"] == "agent" and accounts["dupe"]["capacity"] == 2
    assert accounts["admin"]["role"] == "admin"  # the one `appliance init` made

    table = as_table.stdout.splitlines()
    assert table[0].split() == ["name", "role", "capacity", "state"], table
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["lisa"] == ["lisa", "admin", "4", "enabled"], table  # desk.default_capacity = 4
    assert rows["dupe"] == ["dupe", "agent", "2", "enabled"], table


def test_adding_a_name_twice_is_exit_2_with_a_clear_line(shared: Node) -> None:
    fails(user_cli(shared, "add", "dupe", "--role", "admin", "--password-stdin", stdin="the-other-password\n"),
          "'dupe'", "exists")
    account = listed(shared)["dupe"]
    assert (account["role"], account["capacity"]) == ("agent", 2)  # the first one is untouched


def test_passwd_disable_enable_and_capacity(shared: Node) -> None:
    changed, capacity = side_by_side(shared, (("passwd", "kim", "--password-stdin"), "kims-second-password\n"),
                                     (("capacity", "kim", "7"), None))
    assert changed.returncode == 0 and changed.stdout.strip() == "new password for kim set", changed
    assert capacity.returncode == 0 and "kim now handles up to 7" in capacity.stdout, capacity

    disabled = user_cli(shared, "disable", "kim")
    assert disabled.returncode == 0 and "disabled kim" in disabled.stdout, disabled
    assert re.search(r"^kim\s+agent\s+7\s+disabled$", user_cli(shared, "list").stdout, re.M)
    enabled = user_cli(shared, "enable", "kim")
    assert enabled.returncode == 0 and "enabled kim" in enabled.stdout, enabled

    fails(user_cli(shared, "capacity", "kim", "101"), "between 0 and 100")
    account = listed(shared)["kim"]
    assert (account["disabled"], account["capacity"]) == (False, 7), account


def test_an_unknown_name_or_a_bad_name_is_exit_2_naming_it(shared: Node) -> None:
    unknown = [("disable", "ghost"), ("capacity", "ghost", "2")]
    bad = ["two words", "agent:x"]
    results = side_by_side(shared, *[(args, "a-long-enough-password\n") for args in unknown],
                           *[(("add", name, "--role", "agent"), None) for name in bad])
    for args, result in zip(unknown, results, strict=False):
        line = fails(result, "'ghost'")
        assert "no account" in line, (args, line)
    for result in results[len(unknown):]:
        fails(result, "account name")
    assert not {"ghost", *bad} & set(listed(shared))
