"""Signing in to the console: the admin from ``appliance init``, wrong passwords and lockout,
the session cookie and CSRF, signing out, roles, and accounts disabled or re-passworded with
the CLI while their sessions are open."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.conftest import Node, Server
from tests.desk.helpers import (
    COOKIE,
    Console,
    add_users,
    drain,
    handoff,
    login,
    make_node,
    next_frame,
    request,
    starting,
    user_cli,
)

WRONG = "wrong username or password"


class Desk:
    def __init__(self, node: Node, server: Server, passwords: dict[str, str]) -> None:
        self.node, self.server, self.passwords = node, server, passwords

    def console(self, name: str) -> Console:
        password = self.node.admin_password if name == "admin" else self.passwords[name]
        return Console(self.server, name, password)


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    node = make_node(tmp_path_factory.mktemp("signin") / "node")
    with starting(node) as server:
        passwords = add_users(node, {name: "agent" for name in ("alice", "dora", "pete", "locky", "sara")})
        server.wait_ready()
        yield Desk(node, server, passwords)


def me(desk: Desk, cookie: str) -> tuple[int, Any]:
    status, body, _ = request(desk.server, "GET", "/api/v1/auth/me", headers={"Cookie": f"{COOKIE}={cookie}"})
    return status, body


def test_the_admin_printed_by_init_signs_in_and_me_returns_them(desk: Desk) -> None:
    status, body, _ = login(desk.server, "admin", desk.node.admin_password)
    assert status == 200, body
    assert body["user"]["name"] == "admin" and body["user"]["role"] == "admin", body
    assert body["csrf_token"], body
    admin = desk.console("admin")
    status, found = me(desk, admin.cookie)
    assert status == 200, found
    assert found["user"]["name"] == "admin" and found["user"]["role"] == "admin", found
    assert found["csrf_token"] == admin.csrf  # the page can recover its CSRF token after a reload

    status, nobody = request(desk.server, "GET", "/api/v1/auth/me")[:2]
    assert status == 401 and nobody["error"] == "unauthorized", nobody


def test_a_wrong_password_or_unknown_name_is_401_with_the_same_sentence(desk: Desk) -> None:
    status, body, headers = login(desk.server, "alice", "not-her-password")
    assert status == 401, body
    assert body == {"status": 401, "error": "unauthorized", "message": WRONG}, body
    assert not headers.get("Set-Cookie"), headers
    # An unknown account looks exactly like a wrong password (no way to probe for names).
    status, unknown, _ = login(desk.server, "no-such-person", "whatever-it-is")
    assert (status, unknown) == (401, body)
    assert desk.console("alice").user["name"] == "alice"  # a later right password still works


def test_five_wrong_passwords_in_a_row_lock_the_account_even_for_the_right_password(desk: Desk) -> None:
    for attempt in range(1, 5):
        status, body, _ = login(desk.server, "locky", f"wrong-{attempt}")
        assert status == 401 and body["message"] == WRONG, (attempt, status, body)
    # The 5th wrong password is the one that locks (the contract: "after 5 failures in a row").
    status, body, _ = login(desk.server, "locky", "wrong-5")
    assert status in (401, 429), (status, body)

    status, body, headers = login(desk.server, "locky", desk.passwords["locky"])
    assert status == 429, (status, body)
    assert body["error"] == "rate_limited" and body["message"], body
    retry_after = headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit() and 0 < int(retry_after) <= 300, headers
    assert not headers.get("Set-Cookie"), headers

    # Only that account is locked; the sign-in failures are in the audit log.
    admin = desk.console("admin")
    status, audit = admin.call("GET", "/api/v1/admin/audit?limit=1000")
    assert status == 200, audit
    failures = [r for r in audit["records"] if r["action"] == "auth.sign_in_failed" and r["target"] == "locky"]
    assert len(failures) >= 5, audit["records"][:10]


def test_a_right_password_resets_the_count_of_failures(desk: Desk) -> None:
    password = desk.passwords["alice"]
    for _ in range(4):
        assert login(desk.server, "alice", "not-it-at-all")[0] == 401
    assert login(desk.server, "alice", password)[0] == 200
    for attempt in range(4):
        status, body, _ = login(desk.server, "alice", "not-it-at-all")
        assert status == 401, (attempt, body)  # not locked: the failures are counted anew
    assert login(desk.server, "alice", password)[0] == 200


def test_the_session_cookie_is_httponly_and_samesite_strict(desk: Desk) -> None:
    admin = desk.console("admin")
    parts = [p.strip() for p in admin.set_cookie.split(";")]
    attributes = {p.partition("=")[0].lower(): p.partition("=")[2] for p in parts[1:]}
    assert parts[0].startswith(f"{COOKIE}="), admin.set_cookie
    assert "httponly" in attributes, admin.set_cookie
    assert attributes.get("samesite", "").lower() == "strict", admin.set_cookie
    assert attributes.get("path") == "/", admin.set_cookie
    assert COOKIE not in admin.csrf and admin.csrf != admin.cookie


def test_a_change_with_the_cookie_needs_the_csrf_token(desk: Desk) -> None:
    admin = desk.console("admin")
    alice = desk.console("alice")
    status, body = admin.call("POST", "/api/v1/desk/presence", {"status": "away"}, csrf=False)
    assert status == 403 and body["error"] == "forbidden", body
    status, body = admin.call("POST", "/api/v1/desk/presence", {"status": "away"})
    assert status == 200 and body["name"] == "admin", body

    before = admin.call("GET", "/api/v1/desk/canned")[1]
    replies = {"replies": [{"shortcut": "hi", "text": "Hello, how can I help?"}]}
    assert before != replies
    status, body = admin.call("PUT", "/api/v1/desk/canned", replies, csrf=False)
    assert status == 403, body
    assert admin.call("GET", "/api/v1/desk/canned")[1] == before  # nothing was changed
    # Another session's token does not do either.
    status, body, _ = request(desk.server, "PUT", "/api/v1/desk/canned", replies,
                              headers={"Cookie": f"{COOKIE}={admin.cookie}", "X-CSRF-Token": alice.csrf})
    assert status == 403, body
    status, body = admin.call("PUT", "/api/v1/desk/canned", replies)
    assert status == 200, body
    assert admin.call("GET", "/api/v1/desk/canned")[1] == replies
    assert admin.call("PUT", "/api/v1/desk/canned", before)[0] == 200


def test_signing_out_ends_that_session(desk: Desk) -> None:
    first = desk.console("admin")
    second = desk.console("admin")
    status, body = first.call("POST", "/api/v1/auth/logout", csrf=False)
    assert status == 403, body
    assert me(desk, first.cookie)[0] == 200

    status, body, headers = request(desk.server, "POST", "/api/v1/auth/logout",
                                    headers={"Cookie": f"{COOKIE}={first.cookie}", "X-CSRF-Token": first.csrf})
    assert status == 204, body
    cleared = headers.get("Set-Cookie", "")
    assert cleared.startswith(f"{COOKIE}=;") or cleared.startswith(f'{COOKIE}="";'), cleared
    assert "max-age=0" in cleared.lower(), cleared

    # The browser forgets the cookie; one that kept it (or stole it) gets nothing with it either.
    status, body = me(desk, first.cookie)
    assert status == 401, body
    assert first.call("GET", "/api/v1/desk/conversations")[0] == 401
    assert me(desk, second.cookie)[0] == 200  # the admin's other session goes on


def test_an_agent_gets_403_on_admin_routes_and_the_admin_200(desk: Desk) -> None:
    alice, admin = desk.console("alice"), desk.console("admin")
    for path in ("/api/v1/admin/models", "/api/v1/admin/audit"):
        status, body = alice.call("GET", path)
        assert status == 403 and body["error"] == "forbidden" and body["message"], (path, body)
        status, body = admin.call("GET", path)
        assert status == 200, (path, body)
    # The agent still works their desk.
    assert alice.call("GET", "/api/v1/desk/conversations")[0] == 200


def test_a_disabled_account_cannot_sign_in_and_its_open_session_stops_working(desk: Desk) -> None:
    dora = desk.console("dora")
    assert me(desk, dora.cookie)[0] == 200
    result = user_cli(desk.node, "disable", "dora")
    assert result.returncode == 0, result.stderr
    assert "disabled dora" in result.stdout

    status, body = me(desk, dora.cookie)
    assert status == 401, body
    assert dora.call("POST", "/api/v1/desk/presence", {"status": "online"})[0] == 401
    status, body, headers = login(desk.server, "dora", desk.passwords["dora"])
    assert status == 401 and body["message"] == WRONG, body
    assert not headers.get("Set-Cookie")
    socket = f"ws://127.0.0.1:{desk.server.port}/ws/agent"
    with pytest.raises((InvalidStatus, ConnectionClosed)), connect(
            socket, additional_headers={"Cookie": f"{COOKIE}={dora.cookie}"}, open_timeout=10) as ws:
        ws.recv(timeout=5)

    assert user_cli(desk.node, "enable", "dora").returncode == 0
    assert me(desk, dora.cookie)[0] == 401  # enabling does not bring back the ended session
    assert desk.console("dora").user["name"] == "dora"


def test_a_disabled_accounts_open_console_socket_stops_getting_the_desk(desk: Desk) -> None:
    """Disabling ends the account's sessions "at once" (``appliance user`` help): that includes
    the console window still open, which must not go on receiving visitors' conversations."""
    sara, alice = desk.console("sara"), desk.console("alice")
    with sara.socket() as ws, alice.socket() as control:
        assert user_cli(desk.node, "disable", "sara").returncode == 0
        try:
            drain(ws, 0.2)
        except ConnectionClosed:
            return  # the server closed the disabled account's socket at once
        visitor = handoff(desk.server)  # a visitor joins the queue: every agent's console hears of it
        cid = visitor["conversation_id"]
        next_frame(control, lambda f: f["type"] == "conversation" and f["conversation"]["id"] == cid,
                   "the new conversation on an enabled agent's console")
        try:
            frames = drain(ws, 1.0)
        except ConnectionClosed:
            return  # the server closed the disabled account's socket
        leaked = [f for f in frames if cid in json.dumps(f)]
        assert not leaked, f"the disabled account's socket still gets the desk: {leaked[:2]}"


def test_user_passwd_ends_the_existing_sessions(desk: Desk) -> None:
    pete = desk.console("pete")
    assert me(desk, pete.cookie)[0] == 200
    result = user_cli(desk.node, "passwd", "pete", "--password-stdin", stdin="a-brand-new-password\n")
    assert result.returncode == 0, result.stderr
    assert me(desk, pete.cookie)[0] == 401
    assert login(desk.server, "pete", desk.passwords["pete"])[0] == 401
    status, body, _ = login(desk.server, "pete", "a-brand-new-password")
    assert status == 200 and body["user"]["name"] == "pete", body


def test_the_agent_socket_without_a_session_is_closed_with_4401(desk: Desk) -> None:
    """Contract: "/ws/agent (the session cookie authenticates it; refused with close code 4401
    without one)" -- the console tells "sign in again" from a dropped network by that code."""
    try:
        with connect(f"ws://127.0.0.1:{desk.server.port}/ws/agent", open_timeout=10) as ws, \
                pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    except InvalidStatus as exc:
        pytest.fail(f"the WebSocket handshake was refused with HTTP {exc.response.status_code}; "
                    "the contract says the socket is closed with code 4401")
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401, closed.value
