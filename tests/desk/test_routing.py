"""Routing visitors who ask for a person: assignment to online agents with free capacity, the
waiting line and its place numbers on the visitor's socket, leave-a-message when nobody is
online or the desk is closed, and the event log recording every assignment and owner change."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from appliance.core.phrases import PHRASES
from tests.conftest import CLI, ROOT, Node, Server
from tests.desk.helpers import (
    Console,
    add_users,
    chat,
    events,
    handoff,
    make_node,
    next_frame,
    request,
    resume,
    starting,
    visitor_socket,
    wait_for,
)
from tests.engine.harness import new_token, scrape

HANDOFF_EN = PHRASES["en"]["handoff"]
LEAVE_EN = PHRASES["en"]["leave_message"]


class Desk:
    def __init__(self, node: Node, server: Server, passwords: dict[str, str]) -> None:
        self.node, self.server, self.passwords = node, server, passwords
        self.admin = Console(server, "admin", node.admin_password)  # a cookie session: never "online"

    def console(self, name: str) -> Console:
        return Console(self.server, name, self.passwords[name])

    def queue(self) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.admin.inbox("queue")}

    def online(self) -> set[str]:
        status, body = self.admin.call("GET", "/api/v1/desk/agents")
        assert status == 200, body
        return {a["name"] for a in body["agents"] if a["presence"] == "online"}


@pytest.fixture(scope="module")
def module_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    # No grace after the last console window closes: each test's agents leave with their sockets.
    node = make_node(tmp_path_factory.mktemp("routing") / "node", **{"offline_grace_s = 15": "offline_grace_s = 0"})
    with starting(node) as server:
        passwords = add_users(node, {"alice": "agent", "bob": "agent"}, "--capacity", "1")
        server.wait_ready()
        yield Desk(node, server, passwords)


@pytest.fixture
def desk(module_desk: Desk) -> Iterator[Desk]:
    """The shared node, with nobody online and no open conversation before and after each test."""
    wait_for(lambda: not module_desk.online(), "every agent to be offline")
    yield module_desk
    for conversation in module_desk.admin.inbox("open"):
        status, body = module_desk.admin.desk("POST", f"/{conversation['id']}/close")
        assert status == 200, body
    assert module_desk.admin.inbox("open") == []


def test_with_no_agent_online_asking_for_a_person_offers_leave_a_message(desk: Desk) -> None:
    assert desk.online() == set()
    by_intent = chat(desk.server, "I want to talk to a person")
    assert by_intent["owner"] == "human", by_intent
    assert by_intent["reply"] == {"text": LEAVE_EN, "source": "leave_message", "citations": []}, by_intent

    with visitor_socket(desk.server) as ws:
        ws.send(json.dumps({"type": "handoff"}))
        reply = next_frame(ws, lambda f: f["type"] in ("reply", "error"), "handoff reply")
        assert reply["type"] == "reply" and reply["reply"]["text"] == LEAVE_EN, reply
        status = next_frame(ws, lambda f: f["type"] == "status", "status")
        assert status["owner"] == "queue" and status["agents_online"] is False and status["open_now"] is True, status
        assert status["position"] == 2, status  # behind the first visitor

    by_button = handoff(desk.server)
    assert by_button["reply"]["text"] == LEAVE_EN and by_button["reply"]["source"] == "leave_message", by_button
    queue = desk.queue()
    assert [queue[v["conversation_id"]]["position"] for v in (by_intent, reply, by_button)] == [1, 2, 3]
    assert all(c["assignee"] == "" for c in queue.values())


def test_two_agents_with_capacity_one_and_three_visitors(desk: Desk) -> None:
    alice, bob = desk.console("alice"), desk.console("bob")
    with alice.socket() as alice_ws, bob.socket() as bob_ws:
        wait_for(lambda: desk.online() == {"alice", "bob"}, "alice and bob online")

        first = chat(desk.server, "I want to talk to a person")
        assert first["reply"]["text"] == HANDOFF_EN and first["owner"] == "human", first
        second = handoff(desk.server)
        assert second["reply"]["text"] == HANDOFF_EN, second
        with visitor_socket(desk.server) as own_ws:
            own_ws.send(json.dumps({"type": "handoff"}))
            third = next_frame(own_ws, lambda f: f["type"] in ("reply", "error"), "handoff reply")
            assert third["type"] == "reply" and third["reply"]["text"] == HANDOFF_EN, third
        one, two, three = (v["conversation_id"] for v in (first, second, third))

        def assigned() -> dict[str, dict[str, Any]] | None:
            queue = desk.queue()
            return queue if queue[one]["assignee"] and queue[two]["assignee"] else None

        queue = wait_for(assigned, "the first two visitors to be assigned", timeout=3)
        assert {queue[one]["assignee"], queue[two]["assignee"]} == {"alice", "bob"}, queue
        assert all(queue[c]["owner"] == "queue" and queue[c]["position"] == 0 for c in (one, two)), queue
        assert (queue[three]["assignee"], queue[three]["position"]) == ("", 1), queue[three]
        assert queue[one]["subject"] == "I want to talk to a person", queue[one]  # the visitor's first message
        status_code, inbox = desk.admin.desk("GET", "?filter=queue")
        assert status_code == 200 and inbox["counts"]["queue"] == 3, inbox["counts"]
        metrics = scrape(desk.server)  # what an operator's dashboard shows of the desk
        assert metrics["appliance_desk_waiting"] == 3, metrics
        assert metrics['appliance_desk_open_conversations{owner="queue"}'] == 3, metrics
        assert metrics["appliance_desk_oldest_wait_seconds"] > 0, metrics
        assert metrics['appliance_desk_agents{presence="online"}'] == 2, metrics
        assert metrics["appliance_webhook_backlog"] == 0, metrics
        assert metrics["process_resident_memory_bytes"] > 0, metrics

        # Each agent hears of their own assignment and sees it under "mine"; not the other's.
        holder = {queue[one]["assignee"]: one, queue[two]["assignee"]: two}
        for console, ws in ((alice, alice_ws), (bob, bob_ws)):
            mine = holder[console.name]
            frame = next_frame(ws, lambda f, c=mine: f["type"] == "conversation" and f["event"] == "assigned"
                               and f["conversation"]["id"] == c, f"assigned frame for {console.name}")
            assert frame["conversation"]["assignee"] == console.name, frame
            assert [c["id"] for c in console.inbox("mine")] == [mine]
            assert {c["id"] for c in console.inbox("queue")} == {mine, three}

        # The third visitor, on a fresh socket (a page reload), resumes and sees the line.
        with visitor_socket(desk.server) as ws:
            history, status = resume(ws, third)
            assert [m["text"] for m in history["messages"]] == [HANDOFF_EN], history
            assert status["owner"] == "queue" and status["position"] == 1, status
            assert status["agents_online"] is True and status["open_now"] is True and status["agent"] == "", status
            assert status["wait_s"] > 0, status

            # Whoever got the first visitor takes it over and resolves it: the third is next, theirs.
            taker = alice if queue[one]["assignee"] == "alice" else bob
            taker_ws = alice_ws if taker is alice else bob_ws
            status_code, taken = taker.desk("POST", f"/{one}/take")
            assert status_code == 200 and taken["owner"] == f"agent:{taker.name}", taken
            status_code, closed = taker.desk("POST", f"/{one}/close")
            assert status_code == 200 and closed["status"] == "closed", closed

            moved = next_frame(ws, lambda f: f["type"] == "status" and f["position"] == 0, "status with position 0")
            assert moved["owner"] == "queue" and moved["agent"] == taker.name, moved
            next_frame(taker_ws, lambda f: f["type"] == "conversation" and f["event"] == "assigned"
                       and f["conversation"]["id"] == three, "the third visitor's assignment on the console")
        queue = desk.queue()
        assert (queue[three]["assignee"], queue[three]["position"]) == (taker.name, 0), queue[three]
        assert one not in queue


def test_every_assignment_and_ownership_change_is_an_event_in_the_log(desk: Desk) -> None:
    alice = desk.console("alice")
    with alice.socket():
        wait_for(lambda: "alice" in desk.online(), "alice online")
        visitor = handoff(desk.server)
        cid = visitor["conversation_id"]
        wait_for(lambda: desk.queue()[cid]["assignee"] == "alice", "the visitor assigned to alice", timeout=3)
        assert alice.desk("POST", f"/{cid}/take")[0] == 200
        assert alice.desk("POST", f"/{cid}/handback")[0] == 200
        assert alice.desk("POST", f"/{cid}/close")[0] == 200
        assert alice.desk("POST", f"/{cid}/reopen")[0] == 200

    kinds = ("conversation.owner", "conversation.assigned", "conversation.closed", "conversation.reopened")
    mine = [e for e in events(desk.node, *kinds) if e["conversation_id"] == cid]
    log = [(e["t"], e.get("owner") or e.get("assignee") or "") for e in mine]
    assert log == [
        ("conversation.owner", "queue"),  # the visitor asked for a person
        ("conversation.assigned", "alice"),  # the router gave it to alice
        ("conversation.owner", "agent:alice"),  # she took it over
        ("conversation.owner", "bot"),  # and handed it back
        ("conversation.closed", ""),
        ("conversation.reopened", "agent:alice"),
    ], log
    assert [e.get("by") for e in mine] == ["visitor", "router", "agent:alice", "agent:alice", "agent:alice",
                                           "agent:alice"], mine


def closed_now_schedule(zone: str) -> list[str]:
    """A daily one-hour window twelve hours away from now: the desk is closed while the test runs."""
    hour = (dt.datetime.now(ZoneInfo(zone)).hour + 12) % 24
    return [f"mon-sun {hour:02d}:00-{hour:02d}:59"]


def test_off_hours_the_reply_is_leave_a_message_even_with_an_agent_online(tmp_path: Any) -> None:
    zone = "Asia/Shanghai"
    closed = f"hours = {json.dumps(closed_now_schedule(zone))}"
    node = make_node(tmp_path / "node", **{
        "hours = []": closed,
        'timezone = "UTC"': f'timezone = "{zone}"',
    })
    with starting(node) as server, ThreadPoolExecutor(max_workers=2) as pool:
        added = pool.submit(add_users, node, {"olga": "agent"})
        olga = new_token(node, "agent", "olga")  # a script's token for the account of the same name
        added.result()
        server.wait_ready()
        status, me, _ = request(server, "POST", "/api/v1/desk/presence", {"status": "online"},
                                headers={"Authorization": f"Bearer {olga}"})
        assert status == 200 and me["name"] == "olga" and me["presence"] == "online", me

        asked = chat(server, "I want to talk to a person")
        assert asked["reply"]["text"] == LEAVE_EN and asked["reply"]["source"] == "leave_message", asked
        pressed = handoff(server)
        assert pressed["reply"]["text"] == LEAVE_EN, pressed
        with visitor_socket(server) as ws:
            _, frame = resume(ws, pressed)
            assert frame["open_now"] is False and frame["agents_online"] is True, frame
            assert frame["owner"] == "queue" and frame["agent"] == "", frame
        # Nobody is given a conversation while the desk is closed.
        status, queue, _ = request(server, "GET", "/api/v1/desk/conversations?filter=queue",
                                   headers={"Authorization": f"Bearer {olga}"})
        assert status == 200, queue
        assert {c["id"]: c["assignee"] for c in queue["conversations"]} == {
            asked["conversation_id"]: "", pressed["conversation_id"]: ""}

    # A schedule line that cannot be read stops `appliance serve` with one line naming the key.
    node.edit_config(closed, 'hours = ["weekdays 9-5"]')
    result = subprocess.run([*CLI, "--config", str(node.config), "serve", "--port", "1"], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2, result
    assert result.stderr.strip().splitlines() == [
        "appliance: error: key 'desk.hours': cannot read 'weekdays 9-5' (write e.g. \"mon-fri 09:00-18:00\")"]


def test_a_script_token_that_is_no_account_does_not_count_as_an_agent_online(module_desk: Desk) -> None:
    """A monitoring script with an admin token reads the model table; nobody is at the desk, so a
    visitor who asks for a person must be offered leave-a-message, not told a human is coming.

    Runs last in this module: the script's token stays "seen" for ``desk.away_after_s``."""
    desk = module_desk
    wait_for(lambda: not desk.online(), "every agent to be offline")
    monitor = new_token(desk.node, "admin", "monitoring")  # a token's name need not be an account
    status, body, _ = request(desk.server, "GET", "/api/v1/admin/models",
                              headers={"Authorization": f"Bearer {monitor}"})
    assert status == 200, body
    assert desk.online() == set()

    pressed = handoff(desk.server)
    with visitor_socket(desk.server) as ws:
        _, frame = resume(ws, pressed)
    assert (pressed["reply"]["source"], frame["agents_online"]) == ("leave_message", False), (pressed, frame)
