"""An agent takes over while the bot is still answering: 200 races of "Take over" against an
in-flight bot turn (a mock upstream LLM that answers after a short delay). Whoever wins, the
visitor never sees a bot message after the agent joined, the conversation stays the agent's,
and a bot reply that was dropped reaches the visitor as ``reply: null``."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import Server
from tests.desk.helpers import JOINED_EN, Console, chat, events, make_node
from tests.engine.harness import running, upstreams

RACES = 200
WORKERS = 16
SEED = 20261202
UPSTREAM_LATENCY_MS = 30
SOON_S = 0.05
LATE_S = 0.8


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Server, Console]]:
    directory = tmp_path_factory.mktemp("race")
    node = make_node(directory / "node")
    # The mock answers each bot turn after a short delay: the window a takeover can hit.
    with upstreams(directory, "up1", latency_ms=UPSTREAM_LATENCY_MS) as (up1,):
        up1.add_to(node, "--retries", "0")
        node.cli("model", "use", "up1")
        with running(node) as server:
            yield node, server, Console(server, "admin", node.admin_password)


def test_takeover_races_against_in_flight_bot_turns(setup: tuple[Any, Server, Console]) -> None:
    node, server, admin = setup
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        visitors = list(pool.map(lambda i: chat(server, "hello"), range(RACES)))
    assert all(v["owner"] == "bot" and v["reply"]["source"] == "intent" for v in visitors), visitors[0]

    def race(i: int) -> tuple[dict[str, Any], tuple[int, Any]]:
        rnd = random.Random(SEED + i)
        # Half the takeovers come almost at once (they land while the bot works), half at any
        # point of a turn or after it (then the bot may answer first): both sides of the race.
        delay = rnd.uniform(0, SOON_S) if i % 2 else rnd.uniform(0, LATE_S)
        visitor = visitors[i]
        took: list[tuple[int, Any]] = []

        def take() -> None:
            time.sleep(delay)
            took.append(admin.desk("POST", f"/{visitor['conversation_id']}/take"))

        taker = threading.Thread(target=take)
        taker.start()
        outcome = chat(server, f"Where is the parcel with tracking number {1000 + i}?", visitor)
        taker.join()
        return outcome, took[0]

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(race, range(RACES)))
        details = list(pool.map(lambda v: admin.detail(v["conversation_id"]), visitors))
    owner_changes: dict[str, list[str]] = {}
    for payload in events(node, "conversation.owner"):
        owner_changes.setdefault(payload["conversation_id"], []).append(payload["owner"])

    problems: list[str] = []
    outcomes = {"before the turn": 0, "dropped in flight": 0, "bot answered first": 0}
    for i, ((outcome, (take_status, taken)), detail) in enumerate(zip(results, details, strict=True)):
        cid = visitors[i]["conversation_id"]
        where = f"race {i} ({cid})"
        if take_status != 200 or taken.get("owner") != "agent:admin":
            problems.append(f"{where}: take answered {take_status} {taken}")
            continue
        messages = detail["messages"]
        roles = [m["role"] for m in messages]
        joined = [k for k, m in enumerate(messages) if m["role"] == "system" and JOINED_EN in m["text"]]
        if len(joined) != 1:
            problems.append(f"{where}: {len(joined)} 'has joined' notices: {roles}")
            continue
        after = [m for m in messages[joined[0] + 1:] if m["role"] == "bot"]
        if after:
            problems.append(f"{where}: bot message after the takeover: {after[0]['text']!r} ({roles})")
        if detail["conversation"]["owner"] != "agent:admin":
            problems.append(f"{where}: owner is {detail['conversation']['owner']!r} after the takeover")
        if owner_changes.get(cid) != ["agent:admin"]:
            problems.append(f"{where}: owner changes in the log: {owner_changes.get(cid)}")
        bots = [m for m in messages if m["role"] == "bot"]
        if outcome["reply"] is None:
            if outcome["owner"] != "human":
                problems.append(f"{where}: reply null with owner {outcome['owner']!r}")
            if len(bots) != 1:  # only the greeting; the dropped reply was never stored
                problems.append(f"{where}: reply null, yet bot messages {[m['text'] for m in bots]}")
            if outcome["trace_id"]:
                trace = detail["traces"].get(outcome["trace_id"])
                if trace is None or trace["superseded_by"] != "agent:admin":
                    problems.append(f"{where}: dropped turn's trace {trace}")
                outcomes["dropped in flight"] += 1
            else:
                outcomes["before the turn"] += 1
        else:
            stored = [m for m in bots if m["id"] == outcome["message_id"]]
            if not stored or stored[0]["text"] != outcome["reply"]["text"]:
                problems.append(f"{where}: the visitor got {outcome['reply']!r}, stored: {[m['text'] for m in bots]}")
            elif messages.index(stored[0]) > joined[0]:
                problems.append(f"{where}: the bot reply the visitor got is stored after the takeover")
            if outcome["reply"]["source"] != "llm":
                problems.append(f"{where}: unexpected reply source {outcome['reply']['source']!r}")
            outcomes["bot answered first"] += 1
    assert not problems, "\n".join(problems[:20]) + f"\n({len(problems)} problems; outcomes {outcomes})"
    # The races really raced: some takeovers landed while the bot was working on its reply.
    assert outcomes["dropped in flight"] > 0, outcomes

