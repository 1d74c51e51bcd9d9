"""Real conversations for the reports, search and export tests, made the way visitors and agents
make them: the visitor API (chat, "talk to a person", a rating) and the desk API with an admin's
token (take over, reply, resolve)."""

from __future__ import annotations

from typing import Any, NamedTuple

from tests.conftest import Server
from tests.desk.helpers import chat, handoff, request

ENGLISH = "How do I get a refund for my order?"
CHINESE = "我想申请退款，订单号是 A-1001"
CHINESE_REPLY = "您好，退款已经为您处理，三个工作日内到账。"
QUOTED_REPLY = 'Sorry for the wait, "Sam" here, checking your card, line two\nof my answer'


class Seeded(NamedTuple):
    english: str  # answered by the bot alone
    chinese: str  # handed off, answered by the admin in Chinese, resolved, rated 5
    quoted: str  # handed off, answered with quotes, commas and a line break, resolved, rated 2
    trace_id: str  # the bot's trace in the English conversation


def _desk(server: Server, token: str, conversation: str, action: str, body: dict[str, Any] | None = None) -> None:
    status, answer, _ = request(server, "POST", f"/api/v1/desk/conversations/{conversation}/{action}", body,
                                headers={"Authorization": f"Bearer {token}"})
    assert status == 200, (action, answer)


def _rate(server: Server, visitor: dict[str, Any], score: int) -> None:
    status, answer, _ = request(server, "POST", f"/api/v1/conversations/{visitor['conversation_id']}/rating",
                                {"score": score, "comment": ""},
                                headers={"Authorization": f"Bearer {visitor['visitor_token']}"})
    assert status in (200, 204), answer


def _handled(server: Server, token: str, first: str, reply: str, score: int) -> str:
    visitor = chat(server, first)
    handoff(server, visitor)
    conversation = str(visitor["conversation_id"])
    _desk(server, token, conversation, "take")
    _desk(server, token, conversation, "reply", {"text": reply})
    _desk(server, token, conversation, "close")
    _rate(server, visitor, score)
    return conversation


def seed(server: Server, admin_token: str) -> Seeded:
    english = chat(server, ENGLISH)
    assert english["trace_id"], english
    chinese = _handled(server, admin_token, CHINESE, CHINESE_REPLY, 5)
    quoted = _handled(server, admin_token, "My card does not work", QUOTED_REPLY, 2)
    return Seeded(english=str(english["conversation_id"]), chinese=chinese, quoted=quoted,
                  trace_id=str(english["trace_id"]))
