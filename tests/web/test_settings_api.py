"""The Settings API on a real server: business hours and the widget look read and changed by an
admin, checked with the config's parsers (400 naming the key), live for the next visitor who
asks for a person, and the look served to anyone at /api/v1/widget/settings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Node, Server
from tests.desk.helpers import Console, handoff, make_node, request, starting
from tests.engine.harness import new_token

OPEN_ALWAYS = {"timezone": "UTC", "hours": [], "holidays": []}


def closed_now() -> dict[str, Any]:
    """Hours under which nobody answers now (UTC): only one whole day, three days from today."""
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    other = days[(dt.datetime.now(dt.UTC).weekday() + 3) % 7]
    return {"timezone": "Asia/Shanghai", "hours": [f"{other} 00:00-24:00"], "holidays": ["2026-12-25"]}


class Env:
    def __init__(self, node: Node, server: Server) -> None:
        self.node, self.server = node, server
        self.admin = Console(server, "admin", node.admin_password)

    def put(self, body: dict[str, Any]) -> tuple[int, Any]:
        return self.admin.call("PUT", "/api/v1/admin/settings", body)

    def settings(self) -> dict[str, Any]:
        status, body = self.admin.call("GET", "/api/v1/admin/settings")
        assert status == 200, body
        return dict(body)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    node = make_node(tmp_path_factory.mktemp("settings-api") / "node")
    with starting(node) as server:
        server.wait_ready()
        yield Env(node, server)


def test_the_config_hours_and_the_default_look_until_an_admin_changes_them(env: Env) -> None:
    shown = env.settings()
    assert shown["hours_from"] == "config", shown
    assert shown["desk"] == OPEN_ALWAYS, shown
    assert shown["widget"] == {"title": "", "color": "", "greeting_en": "", "greeting_zh": "", "position": "right"}


@pytest.mark.parametrize(("body", "named"), [
    ({"desk": {"hours": ["mon-fry 09:00-18:00"]}}, "'desk.hours': cannot read 'mon-fry 09:00-18:00'"),
    ({"desk": {"hours": ["mon 18:00-09:00"]}}, "'desk.hours'"),
    ({"desk": {"timezone": "Mars/Olympus"}}, "'desk.timezone': unknown time zone 'Mars/Olympus'"),
    ({"desk": {"timezone": "America"}}, "'desk.timezone': unknown time zone 'America'"),
    ({"desk": {"holidays": ["25.12.2026"]}}, "'desk.holidays'"),
    ({"widget": {"color": "red"}}, "'widget.color': 'red' is not a colour"),
    ({"widget": {"title": "x" * 81}}, "'widget.title': at most 80 characters"),
    ({"widget": {"position": "top"}}, "position"),
    ({"widget": {"colour": "#ffffff"}}, "colour"),
])
def test_bad_input_is_refused_naming_the_key_and_changes_nothing(env: Env, body: dict[str, Any], named: str) -> None:
    before = env.settings()
    status, answer = env.put(body)
    assert status == 400, answer
    assert named in answer["message"] + str(answer.get("detail", "")), answer
    assert env.settings() == before


def test_hours_set_in_the_console_decide_the_next_handoff_at_once(env: Env) -> None:
    token = {"Authorization": f"Bearer {new_token(env.node, 'admin', 'admin')}"}  # the admin's script: online
    status, me, _ = request(env.server, "POST", "/api/v1/desk/presence", {"status": "online"}, headers=token)
    assert status == 200 and me["presence"] == "online", me
    try:
        assert handoff(env.server)["reply"]["source"] == "handoff"

        status, changed = env.put({"desk": closed_now()})
        assert status == 200, changed
        assert changed["hours_from"] == "console" and changed["desk"] == closed_now(), changed
        assert handoff(env.server)["reply"]["source"] == "leave_message"

        status, changed = env.put({"desk": {"timezone": " Europe/Berlin ", "hours": [" mon-sun 00:00-24:00 ", ""]}})
        assert status == 200, changed
        assert changed["desk"] == {"timezone": "Europe/Berlin", "hours": ["mon-sun 00:00-24:00"], "holidays": []}
        assert handoff(env.server)["reply"]["source"] == "handoff"
    finally:
        request(env.server, "POST", "/api/v1/desk/presence", {"status": "offline"}, headers=token)
    records = env.admin.call("GET", "/api/v1/admin/audit?limit=1000")[1]["records"]
    hours = [r for r in records if r["action"] == "settings.change" and r["target"] == "desk.hours"]
    assert len(hours) == 2 and {r["actor"] for r in hours} == {"admin:admin"}, hours
    assert {r["ip"] for r in hours} == {"127.0.0.1"}, hours


def test_the_look_is_public_cacheable_and_names_no_secret(env: Env) -> None:
    look = {"title": "  Acme   Help ", "color": "#E4572E", "greeting_en": "Hi from Acme!",
            "greeting_zh": "您好，欢迎来到 Acme！", "position": "left"}
    status, changed = env.put({"widget": look})
    assert status == 200, changed
    stored = {**look, "title": "Acme Help", "color": "#e4572e"}
    assert changed["widget"] == stored and changed["hours_from"] == "console", changed

    status, body, headers = request(env.server, "GET", "/api/v1/widget/settings")
    assert status == 200 and body == stored, body
    assert headers["Cache-Control"] == "public, max-age=60"
    assert headers["Access-Control-Allow-Origin"] == "*"

    status, answer = env.put({"widget": stored})  # nothing changed: nothing written, nothing audited
    assert status == 200, answer
    records = env.admin.call("GET", "/api/v1/admin/audit?limit=1000")[1]["records"]
    assert len([r for r in records if r["target"] == "widget.look"]) == 1, records
