"""A Chinese visitor never reads an English sentence from the bot's or the desk's fixed texts:
asking for a person, greetings, questions the knowledge base cannot answer, an image, and the
notices when an agent joins, passes the conversation on, hands back and resolves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from appliance.core.phrases import PHRASES
from tests.conftest import Node, Server
from tests.desk.helpers import (
    Console,
    add_user,
    chat,
    handoff,
    has_cjk,
    has_latin_words,
    make_node,
    next_frame,
    request,
    resume,
    starting,
    visitor_messages,
    visitor_socket,
)
from tests.engine.test_images import png

ZH = PHRASES["zh"]
EN = PHRASES["en"]
GREETING_ZH = "您好！请问有什么可以帮您？"  # the `greeting` intent's answers.zh in the config `appliance init` writes


def chinese(text: str) -> bool:
    return has_cjk(text) and not has_latin_words(text)


class Desk:
    def __init__(self, node: Node, server: Server, passwords: dict[str, str]) -> None:
        self.node, self.server = node, server
        self.wang = Console(server, "wang", passwords["wang"])  # shown to visitors as 小王
        self.li = Console(server, "li", passwords["li"])  # 小李


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    from tests.conftest import ROOT

    node = make_node(tmp_path_factory.mktemp("chinese") / "node")
    with ThreadPoolExecutor(max_workers=3) as pool:
        wang = pool.submit(add_user, node, "wang", "agent", None, "--display-name", "小王")
        li = pool.submit(add_user, node, "li", "agent", None, "--display-name", "小李")
        # The knowledge base is in place before the server starts, as an operator would do it.
        assert "knowledge base version" in node.cli("kb", "add", str(ROOT / "demo_kb" / "zh")).stdout
        with starting(node) as server:
            passwords = {"wang": wang.result(), "li": li.result()}
            server.wait_ready()
            yield Desk(node, server, passwords)


def test_with_nobody_online_every_fixed_text_is_chinese(desk: Desk) -> None:
    asked = chat(desk.server, "我要转人工")
    assert asked["reply"]["text"] == ZH["leave_message"] and asked["reply"]["source"] == "leave_message", asked

    greeted = chat(desk.server, "你好")
    assert greeted["reply"]["text"] == GREETING_ZH, greeted

    # Nothing in the knowledge base about it: "not found, shall I get a person?", then, after a
    # second such turn, the conversation goes to the desk (nobody there: leave a message).
    unknown = chat(desk.server, "火星上今天的天气怎么样？")
    assert unknown["reply"]["source"] == "no_answer" and unknown["reply"]["text"] == ZH["no_answer"], unknown
    again = chat(desk.server, "月球上有没有自动取款机？", unknown)
    assert again["reply"]["text"] == ZH["leave_message"] and again["owner"] == "human", again

    pressed = handoff(desk.server, language="zh-CN")  # the widget's button, browser in Chinese
    assert pressed["reply"]["text"] == ZH["leave_message"], pressed
    later = handoff(desk.server, chat(desk.server, "你好"))  # a Chinese conversation: no language needed
    assert later["reply"]["text"] == ZH["leave_message"], later

    with visitor_socket(desk.server) as ws:
        ws.send(json.dumps({"type": "handoff", "language": "zh"}))
        frame = next_frame(ws, lambda f: f["type"] in ("reply", "error"), "handoff reply")
        assert frame["type"] == "reply" and frame["reply"]["text"] == ZH["leave_message"], frame

    for outcome in (asked, greeted, unknown, again, pressed, later, frame):
        assert chinese(outcome["reply"]["text"]), outcome["reply"]


def test_an_image_from_a_chinese_visitor_is_answered_in_chinese(desk: Desk) -> None:
    visitor = chat(desk.server, "你好")
    status, uploaded, _ = request(desk.server, "POST", "/api/v1/attachments", png(),
                                  headers={"Content-Type": "image/png",
                                           "Authorization": f"Bearer {visitor['visitor_token']}"})
    assert status == 201, uploaded
    answer = chat(desk.server, "", visitor, attachments=[uploaded["attachment_id"]])
    assert answer["reply"] is not None and answer["reply"]["source"] in ("image_handoff", "leave_message"), answer
    assert chinese(answer["reply"]["text"]), answer["reply"]


def test_with_an_agent_online_the_handoff_sentence_is_chinese(desk: Desk) -> None:
    with desk.wang.socket():
        asked = chat(desk.server, "我要转人工")
        assert asked["reply"]["text"] == ZH["handoff"] and asked["reply"]["source"] == "handoff", asked
        with visitor_socket(desk.server) as ws:
            ws.send(json.dumps({"type": "handoff", "language": "zh"}))
            frame = next_frame(ws, lambda f: f["type"] in ("reply", "error"), "handoff reply")
        assert frame["type"] == "reply" and frame["reply"]["text"] == ZH["handoff"], frame


def test_desk_notices_in_a_chinese_conversation_are_chinese(desk: Desk) -> None:
    visitor = chat(desk.server, "请帮我转接客服")
    cid = visitor["conversation_id"]
    assert visitor["owner"] == "human", visitor
    live: list[dict[str, Any]] = []

    def notice(ws: Any) -> str:
        message = next_frame(ws, lambda f: f["type"] == "message" and f["message"]["role"] == "system",
                             "system notice")["message"]
        live.append(message)
        return str(message["text"])

    with visitor_socket(desk.server) as ws:
        resume(ws, visitor)
        assert desk.wang.desk("POST", f"/{cid}/take")[0] == 200
        assert notice(ws) == ZH["agent_joined"].format(agent="小王")
        assert desk.wang.desk("POST", f"/{cid}/transfer", {"to": "li"})[0] == 200
        assert notice(ws) == ZH["transferred"].format(agent="小李")
        assert desk.li.desk("POST", f"/{cid}/handback")[0] == 200
        assert notice(ws) == ZH["handed_back"]
        back = chat(desk.server, "你好", visitor)
        assert back["owner"] == "bot" and back["reply"]["text"] == GREETING_ZH, back
        assert desk.li.desk("POST", f"/{cid}/take")[0] == 200
        assert notice(ws) == ZH["agent_joined"].format(agent="小李")
        assert desk.li.desk("POST", f"/{cid}/close")[0] == 200
        assert notice(ws) == ZH["resolved"]

    stored = [m for m in visitor_messages(desk.server, visitor) if m["role"] in ("system", "bot")]
    assert [m["text"] for m in stored if m["role"] == "system"] == [m["text"] for m in live]
    english = [m["text"] for m in stored if not chinese(m["text"])]
    assert not english, english

    # The same desk speaks English to an English visitor (the texts follow the conversation).
    other = chat(desk.server, "I want to talk to a person")
    assert desk.wang.desk("POST", f"/{other['conversation_id']}/take")[0] == 200
    notices = [m["text"] for m in visitor_messages(desk.server, other) if m["role"] == "system"]
    assert notices == [EN["agent_joined"].format(agent="小王")], notices
