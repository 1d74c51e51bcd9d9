"""The admin API of accounts and tokens (``/api/v1/admin/users``, ``/api/v1/admin/tokens``) over
real HTTP: what an admin's changes do at once, how each is audited, and the clear 400/404/409
answers to bad requests. The page is tested in ``tests/web/admin/test_users_page.py``."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest

from tests.conftest import Node, Server
from tests.desk.helpers import Console, login, make_node
from tests.engine.harness import call, running

USERS, TOKENS = "/api/v1/admin/users", "/api/v1/admin/tokens"
HERE = "127.0.0.1"


class Env(NamedTuple):
    node: Node
    server: Server
    admin: Console


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    node = make_node(tmp_path_factory.mktemp("team-api") / "node")
    with running(node) as server:
        yield Env(node, server, Console(server, "admin", node.admin_password))


def user(name: str) -> str:
    return f"{USERS}/{urllib.parse.quote(name)}"


def audited(env: Env, action: str, target: str) -> list[dict[str, Any]]:
    status, body = env.admin.call("GET", "/api/v1/admin/audit?limit=1000")
    assert status == 200, body
    return [r for r in body["records"] if r["action"] == action and r["target"] == target]


def refused(answer: tuple[int, Any], status: int, *words: str) -> str:
    code, body = answer
    assert code == status, (code, body)
    for word in words:
        assert word in body["message"], body
    return str(body["message"])


def test_an_added_account_signs_in_is_changed_audited_and_disabled_at_once(env: Env) -> None:
    status, made = env.admin.call("POST", USERS, {"name": "王芳", "role": "agent", "display_name": "Wang Fang"})
    assert status == 201, made
    password = made["password"]
    assert len(password) >= 10 and made["account"] == {
        "name": "王芳", "display_name": "Wang Fang", "role": "agent", "capacity": 3, "disabled": False,
        "presence": "offline", "load": 0}, made
    added = audited(env, "user.add", "王芳")[0]
    assert (added["actor"], added["ip"], added["detail"]) == ("admin:admin", HERE, "agent"), added
    assert password not in json.dumps(added) and "scrypt" not in added["after"], added
    wang = Console(env.server, "王芳", password)
    listed = {a["name"]: a for a in env.admin.call("GET", USERS)[1]["accounts"]}
    assert listed["王芳"]["role"] == "agent" and password not in json.dumps(listed)

    status, changed = env.admin.call("PATCH", user("王芳"), {"capacity": 5, "display_name": "王芳"})
    assert status == 200 and changed["account"]["capacity"] == 5, changed
    update = audited(env, "user.update", "王芳")[0]
    assert (update["actor"], update["ip"]) == ("admin:admin", HERE), update
    assert json.loads(update["before"])["capacity"] == 3 and json.loads(update["after"])["capacity"] == 5, update
    assert wang.call("GET", "/api/v1/auth/me")[0] == 200  # capacity and name leave the session alone

    status, changed = env.admin.call("PATCH", user("王芳"), {"role": "supervisor"})
    assert status == 200 and changed["account"]["role"] == "supervisor", changed
    assert audited(env, "user.role", "王芳")[0]["ip"] == HERE
    assert wang.call("GET", "/api/v1/auth/me")[0] == 401  # a new role: sign in again
    wang = Console(env.server, "王芳", password)
    assert wang.user["role"] == "supervisor"

    status, changed = env.admin.call("PATCH", user("王芳"), {"disabled": True})
    assert status == 200 and changed["account"]["disabled"] is True, changed
    assert wang.call("GET", "/api/v1/auth/me")[0] == 401
    assert login(env.server, "王芳", password)[0] == 401
    disabled = audited(env, "user.disable", "王芳")[0]
    assert json.loads(disabled["after"])["disabled"] is True and "scrypt" not in json.dumps(disabled), disabled

    assert env.admin.call("PATCH", user("王芳"), {"disabled": False})[0] == 200
    assert json.loads(audited(env, "user.enable", "王芳")[0]["after"])["disabled"] is False
    status, reset = env.admin.call("POST", f"{user('王芳')}/password", {})
    assert status == 200 and reset["password"] not in ("", password), reset
    assert login(env.server, "王芳", password)[0] == 401
    assert login(env.server, "王芳", reset["password"])[0] == 200
    assert audited(env, "user.passwd", "王芳")[0]["detail"] == "password changed"

    status, chosen = env.admin.call("POST", USERS, {"name": "kim", "role": "agent", "capacity": 0,
                                                    "password": "kims-own-password"})
    assert status == 201 and chosen["password"] == "" and chosen["account"]["capacity"] == 0, chosen
    assert login(env.server, "kim", "kims-own-password")[0] == 200


def test_a_token_is_shown_once_works_at_once_and_stops_when_revoked(env: Env) -> None:
    status, made = env.admin.call("POST", TOKENS, {"name": "夜班脚本", "role": "api"})
    assert status == 201, made
    secret, token = made["secret"], made["token"]
    assert secret.startswith("apl_") and token["role"] == "api" and token["revoked"] is False, made
    assert token["created_at"].endswith("Z"), token
    assert call(env.server.url, "GET", "/v1/models", token=secret)[0] == 200
    status, listing = env.admin.call("GET", TOKENS)
    assert status == 200 and "api" in listing["roles"], listing
    assert secret not in json.dumps(listing) and token in listing["tokens"], listing
    created = audited(env, "token.create", "夜班脚本")[0]
    assert (created["actor"], created["ip"], created["detail"]) == ("admin:admin", HERE, token["token_id"]), created

    status, revoked = env.admin.call("DELETE", f"{TOKENS}/{token['token_id']}")
    assert status == 200 and revoked["revoked"] is True, revoked
    assert call(env.server.url, "GET", "/v1/models", token=secret)[0] == 401
    assert audited(env, "token.revoke", "夜班脚本")[0]["ip"] == HERE
    refused(env.admin.call("DELETE", f"{TOKENS}/{token['token_id']}"), 404, "no active token")
    # Over HTTP a token is revoked by its id only (a name can be shared).
    refused(env.admin.call("DELETE", f"{TOKENS}/{urllib.parse.quote('夜班脚本')}"), 404, "no active token with id")


@pytest.mark.parametrize(("body", "words"), [
    ({"name": "two words", "role": "agent"}, ("account name",)),
    ({"name": "agent:x", "role": "agent"}, ("account name",)),
    ({"name": "nul\u0000name", "role": "agent"}, ("account name", "control characters")),
    ({"name": "boss", "role": "owner"}, ("role 'owner'", "admin, supervisor, agent")),
    ({"name": "busy", "role": "agent", "capacity": 101}, ("capacity", "between 0 and 100")),
    ({"name": "busy", "role": "agent", "capacity": "lots"}, ("capacity",)),
    ({"name": "shorty", "role": "agent", "password": "short12"}, ("at least 10 characters",)),
    ({"name": "x", "role": "agent", "email": "x@example.com"}, ("email",)),
    ({"role": "agent"}, ("name",)),
    ({"name": "long", "role": "agent", "display_name": "n" * 65}, ("display name", "64")),
])
def test_a_bad_account_is_400_naming_the_field(env: Env, body: dict[str, Any], words: tuple[str, ...]) -> None:
    message = refused(env.admin.call("POST", USERS, body), 400, *words)
    assert "short12" not in message  # a refused password is not echoed
    names = {a["name"] for a in env.admin.call("GET", USERS)[1]["accounts"]}
    assert body.get("name") not in names


def test_a_name_taken_is_409_and_the_first_account_is_untouched(env: Env) -> None:
    assert env.admin.call("POST", USERS, {"name": "dupe", "role": "agent", "capacity": 2})[0] == 201
    refused(env.admin.call("POST", USERS, {"name": "dupe", "role": "admin"}), 409, "'dupe'", "exists")
    dupe = next(a for a in env.admin.call("GET", USERS)[1]["accounts"] if a["name"] == "dupe")
    assert (dupe["role"], dupe["capacity"]) == ("agent", 2), dupe


def test_changes_that_cannot_be_made_are_refused_clearly(env: Env) -> None:
    refused(env.admin.call("PATCH", user("ghost"), {"capacity": 2}), 404, "'ghost'")
    refused(env.admin.call("POST", f"{user('ghost')}/password", {}), 404, "'ghost'")
    refused(env.admin.call("PATCH", user("admin"), {}), 400, "nothing to change")
    refused(env.admin.call("PATCH", user("admin"), {"role": "boss"}), 400, "role 'boss'")
    refused(env.admin.call("PATCH", user("admin"), {"capacity": -1}), 400, "capacity")
    refused(env.admin.call("PATCH", user("admin"), {"password_hash": "x"}), 400, "password_hash")
    refused(env.admin.call("POST", f"{user('admin')}/password", {"password": "short"}), 400, "at least 10")
    # An admin may neither lock themself out nor drop their own admin role.
    refused(env.admin.call("PATCH", user("admin"), {"disabled": True}), 409, "your own account")
    refused(env.admin.call("PATCH", user("admin"), {"role": "agent"}), 409, "your own role")
    assert env.admin.call("GET", "/api/v1/auth/me")[0] == 200
    refused(env.admin.call("POST", TOKENS, {"name": "  ", "role": "api"}), 400, "token name")
    refused(env.admin.call("POST", TOKENS, {"name": "ops", "role": "root"}), 400, "token role 'root'")
    refused(env.admin.call("POST", TOKENS, {"name": "ops"}), 400, "role")
    refused(env.admin.call("DELETE", f"{TOKENS}/tok_never_there"), 404, "tok_never_there")


def test_the_last_enabled_admin_stays_and_only_admins_manage_the_team(env: Env) -> None:
    status, made = env.admin.call("POST", TOKENS, {"name": "ops", "role": "admin"})
    assert status == 201, made
    ops = made["secret"]
    answer = call(env.server.url, "PATCH", user("admin"), {"disabled": True}, token=ops)
    refused(answer, 409, "last enabled admin")
    refused(call(env.server.url, "PATCH", user("admin"), {"role": "supervisor"}, token=ops), 409, "last enabled admin")

    status, made = env.admin.call("POST", USERS, {"name": "lisa", "role": "admin", "password": "lisas-password-1"})
    assert status == 201, made
    lisa = Console(env.server, "lisa", "lisas-password-1")
    assert lisa.call("GET", USERS)[0] == 200
    assert call(env.server.url, "PATCH", user("lisa"), {"role": "agent"}, token=ops)[0] == 200  # two admins: fine
    refused(Console(env.server, "lisa", "lisas-password-1").call("GET", USERS), 403, "admin")
