"""WebSocket frames of the widget and the console: msgspec Structs tagged by ``type``.

Client frames are decoded with :func:`decode_visitor` / :func:`decode_agent`; a visitor frame
without a ``type`` is a chat message (the first version of the protocol had only those).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from appliance.core.desk import ConversationSummary, Ticket, User, VisitorStatus
from appliance.core.events import VisitorProfile
from appliance.core.types import Message, Reply


class ChatOutcome(msgspec.Struct, kw_only=True):
    """The answer to one visitor message (HTTP body, and the WebSocket ``reply`` frame)."""

    conversation_id: str
    message_id: str
    visitor_token: str
    reply: Reply | None
    trace_id: str
    owner: Literal["bot", "human"] = "bot"
    # The id the visitor's own message was stored under (empty for a "Talk to a person" request).
    visitor_message_id: str = ""


class _Frame(msgspec.Struct, tag_field="type", kw_only=True):
    pass


# -- visitor → server -------------------------------------------------------------------

class ChatIn(_Frame, tag="message", forbid_unknown_fields=True):
    text: str = ""
    conversation_id: str | None = None
    visitor_token: str | None = None
    attachments: list[str] = msgspec.field(default_factory=list)
    language: str | None = None
    profile: VisitorProfile | None = None


class ResumeIn(_Frame, tag="resume", forbid_unknown_fields=True):
    conversation_id: str
    visitor_token: str


class VisitorTypingIn(_Frame, tag="typing", forbid_unknown_fields=True):
    conversation_id: str
    visitor_token: str
    typing: bool = True


class HandoffIn(_Frame, tag="handoff", forbid_unknown_fields=True):
    conversation_id: str | None = None
    visitor_token: str | None = None
    language: str | None = None


VisitorIn = ChatIn | ResumeIn | VisitorTypingIn | HandoffIn


# -- agent → server ---------------------------------------------------------------------

class AgentTypingIn(_Frame, tag="typing", forbid_unknown_fields=True):
    conversation_id: str
    typing: bool = True


class ActivityIn(_Frame, tag="activity", forbid_unknown_fields=True):
    pass


class PresenceIn(_Frame, tag="presence", forbid_unknown_fields=True):
    status: Literal["online", "away", "offline"]


AgentIn = AgentTypingIn | ActivityIn | PresenceIn


# -- server → clients -------------------------------------------------------------------

class TokenFrame(_Frame, tag="token"):
    text: str


class ReplyFrame(_Frame, ChatOutcome, tag="reply"):
    pass


class MessageFrame(_Frame, tag="message"):
    conversation_id: str
    message: Message


class HistoryFrame(_Frame, tag="history"):
    conversation_id: str
    messages: list[Message]


class StatusFrame(_Frame, VisitorStatus, tag="status"):
    pass


class TypingFrame(_Frame, tag="typing"):
    conversation_id: str
    typing: bool
    who: Literal["visitor", "agent"] = "agent"


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every error the appliance answers, over HTTP and on the sockets."""

    status: int
    error: str
    message: str


class ErrorFrame(_Frame, ErrorBody, tag="error"):
    pass


class HelloFrame(_Frame, tag="hello"):
    user: User


ConversationEvent = Literal["created", "message", "handoff", "assigned", "owner", "closed", "reopened", "rated"]


class ConversationFrame(_Frame, tag="conversation"):
    conversation: ConversationSummary
    event: ConversationEvent


class PresenceFrame(_Frame, tag="presence"):
    agents: list[User]


class TicketFrame(_Frame, tag="ticket"):
    ticket: Ticket


VisitorFrame = TokenFrame | ReplyFrame | MessageFrame | HistoryFrame | StatusFrame | TypingFrame | ErrorFrame
AgentFrame = HelloFrame | ConversationFrame | MessageFrame | TypingFrame | PresenceFrame | TicketFrame | ErrorFrame

_json = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def _parse(raw: bytes) -> object:
    try:
        return _json.decode(raw)
    except RecursionError:
        raise msgspec.DecodeError("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise msgspec.DecodeError("the frame is not valid UTF-8") from None


def decode_visitor(raw: bytes) -> VisitorIn:
    """A frame from the widget (msgspec.DecodeError / ValidationError when it is not one)."""
    data = _parse(raw)
    if isinstance(data, dict) and "type" not in data:
        data["type"] = "message"
    return msgspec.convert(data, VisitorIn)  # type: ignore[arg-type]


def decode_agent(raw: bytes) -> AgentIn:
    return msgspec.convert(_parse(raw), AgentIn)  # type: ignore[arg-type]


def encode(frame: msgspec.Struct) -> str:
    return _encoder.encode(frame).decode()
