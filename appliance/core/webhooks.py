"""Signed webhooks: which logged events notify a receiver, what the body says, how it is signed.

A delivery's body is built once, when its event is committed, and sent unchanged on every
attempt, so its ``id`` (the delivery id, also the ``X-Appliance-Delivery`` header) lets a
receiver drop the duplicates that at-least-once delivery allows. Each attempt carries:

- ``X-Appliance-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``
- ``X-Appliance-Timestamp: <unix seconds of this attempt>``
- ``X-Appliance-Timestamp-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>``,
  so a receiver that rejects old timestamps also rejects a replayed request.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from appliance.core import events as ev
from appliance.core.errors import InputError
from appliance.core.hlc import physical_ms

WebhookEvent = Literal[
    "message.created", "conversation.created", "conversation.status_changed", "conversation.assigned",
    "csat.submitted",
]
EVENTS: tuple[str, ...] = WebhookEvent.__args__  # type: ignore[attr-defined]
TEST_EVENT = "webhook.test"  # sent by "send a test event" whatever the subscription
MAX_URL_CHARS = 2048


def check_url(url: str) -> str:
    """The URL stripped, or InputError saying why a receiver cannot be reached at it."""
    url = url.strip()
    if not url:
        raise InputError("the webhook URL is empty")
    if len(url) > MAX_URL_CHARS:
        raise InputError(f"the webhook URL is longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise InputError(f"the webhook URL {url[:80]!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise InputError(f"the webhook URL {url[:80]!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise InputError(f"the webhook URL {url[:80]!r} must start with http:// or https://")
    if not parts.hostname:
        raise InputError(f"the webhook URL {url[:80]!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise InputError("the webhook URL must not carry a user name or password; the signature authenticates")
    return url


def check_events(names: list[str]) -> list[str]:
    """Known event names, without repeats, in the order of :data:`EVENTS`."""
    wanted = {n.strip() for n in names if n.strip()}
    if not wanted:
        raise InputError(f"name at least one event: {', '.join(EVENTS)}")
    unknown = sorted(wanted - set(EVENTS))
    if unknown:
        raise InputError(f"unknown webhook event {', '.join(unknown)} (known: {', '.join(EVENTS)})")
    return [e for e in EVENTS if e in wanted]


def check_secret(secret: str) -> str:
    if len(secret) < 16:
        raise InputError("the webhook secret must be at least 16 characters (leave it out to have one generated)")
    if len(secret) > 256 or any(ord(c) < 32 for c in secret):
        raise InputError("the webhook secret must be at most 256 printable characters")
    return secret


def new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(24)}"


def notifications(payload: ev.EventPayload) -> list[tuple[str, dict[str, Any]]]:
    """The webhook events one logged event raises, each with its ``data``."""
    if isinstance(payload, ev.MessageAdded):
        m = payload.message
        if m.role == "note":  # agents' private notes stay inside the desk
            return []
        return [("message.created", {"conversation_id": m.conversation_id, "message": {
            "id": m.id, "role": m.role, "text": m.text, "source": m.source, "author": m.author,
            "attachments": list(m.attachments)}})]
    if isinstance(payload, ev.ConversationStarted):
        return [("conversation.created", {"conversation_id": payload.conversation_id,
                                          "visitor_id": payload.visitor_id, "channel": payload.channel,
                                          "language": payload.language})]
    if isinstance(payload, ev.OwnerChanged):
        found = [("conversation.status_changed", {"conversation_id": payload.conversation_id, "status": "open",
                                                  "owner": payload.owner, "reason": payload.reason,
                                                  "by": payload.by})]
        taker = payload.owner.removeprefix("agent:") if payload.owner.startswith("agent:") else ""
        assignee = payload.assignee or taker
        if assignee:
            found.append(("conversation.assigned", {"conversation_id": payload.conversation_id,
                                                    "assignee": assignee, "by": payload.by}))
        return found
    if isinstance(payload, ev.ConversationAssigned):
        return [("conversation.assigned", {"conversation_id": payload.conversation_id,
                                           "assignee": payload.assignee, "by": payload.by})]
    if isinstance(payload, ev.ConversationClosed):
        return [("conversation.status_changed", {"conversation_id": payload.conversation_id, "status": "closed",
                                                 "owner": "", "reason": "", "by": payload.by})]
    if isinstance(payload, ev.ConversationReopened):
        return [("conversation.status_changed", {"conversation_id": payload.conversation_id, "status": "open",
                                                 "owner": payload.owner, "reason": "reopened", "by": payload.by})]
    if isinstance(payload, ev.RatingGiven):
        return [("csat.submitted", {"conversation_id": payload.conversation_id, "rating": payload.score,
                                    "comment": payload.comment})]
    return []


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def body(delivery_id: str, event: str, hlc: int, node: str, data: dict[str, Any]) -> bytes:
    """The JSON envelope: ``{id, event, created_at, node, data}``."""
    return msgspec.json.encode({"id": delivery_id, "event": event, "created_at": iso_ms(physical_ms(hlc)),
                                "node": node, "data": data})


def signature(secret: str, message: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def headers(secret: str, delivery_id: str, event: str, raw: bytes, now_s: int) -> dict[str, str]:
    """The headers of one attempt (see the module docstring for what is signed)."""
    stamp = str(now_s)
    return {
        "Content-Type": "application/json", "User-Agent": "appliance-webhooks/1",
        "X-Appliance-Event": event, "X-Appliance-Delivery": delivery_id,
        "X-Appliance-Timestamp": stamp, "X-Appliance-Signature": signature(secret, raw),
        "X-Appliance-Timestamp-Signature": signature(secret, stamp.encode() + b"." + raw),
    }


def retry_delay_s(attempts: int, base_s: float, max_s: float, rand: random.Random | None = None) -> float:
    """Exponential backoff after ``attempts`` failed attempts: base, 2×base, 4×base … capped at
    ``max_s``, each ±20 % (jitter, so receivers coming back are not hit by every node at once)."""
    delay: float = min(max_s, base_s * 2.0 ** max(0, attempts - 1))
    jitter: float = (rand or random).uniform(0.8, 1.2)
    return delay * jitter
