"""Webhooks in SQLite: receivers, this node's outbox of deliveries, and the log of every attempt.

Receivers are replicated (``WebhookAdded``/``WebhookRemoved``, last writer wins by ``(hlc,
origin)``): one definition serves every paired node. Deliveries are not: an event raises an
outbox row only on the node that appended it (``after_own``), in the same transaction, so a
committed event always has its deliveries and a replicated one is announced by its origin node
alone. Delivery state and attempts are node-local rows, written without events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from appliance.core import events as ev
from appliance.core import webhooks as wh
from appliance.core.errors import Conflict, NotFound
from appliance.core.hlc import physical_ms
from appliance.core.tokens import new_id
from appliance.store.apply import _lww, after_own, handles
from appliance.store.db import Connection

if TYPE_CHECKING:  # the writer imports apply, which imports this module
    from appliance.store.writer import WriteTxn

DeliveryStatus = Literal["pending", "delivered", "failed", "cancelled"]


class Webhook(msgspec.Struct, kw_only=True):
    """A receiver as the API and the CLI show it: never its secret."""

    id: str
    url: str
    events: list[str]
    created_at: str
    pending: int = 0
    delivered: int = 0
    failed: int = 0


class Created(msgspec.Struct, kw_only=True):
    """What adding a receiver answers: the one time its secret is shown."""

    webhook: Webhook
    secret: str


class Attempt(msgspec.Struct, kw_only=True):
    attempt: int
    at: str
    status_code: int  # 0: no HTTP answer (see error)
    error: str
    latency_ms: float


class Delivery(msgspec.Struct, kw_only=True):
    id: str
    webhook_id: str
    url: str
    event: str
    created_at: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: str
    last_status: int
    last_error: str
    log: list[Attempt] = msgspec.field(default_factory=list)


class Due(msgspec.Struct, frozen=True, kw_only=True):
    """A pending delivery whose time has come, with what sending it needs."""

    id: str
    url: str
    secret: str
    event: str
    body: bytes
    attempts: int
    created_ms: int


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt's result, and when to try again (0: never; ``failed`` says whether it gave up)."""

    delivery_id: str
    at_ms: int
    status_code: int
    error: str
    latency_ms: float
    delivered: bool
    next_attempt_ms: int = 0


@handles(ev.WebhookAdded)
def _webhook_added(conn: Connection, e: ev.Event, p: ev.WebhookAdded) -> None:
    _lww(conn, "webhooks", "id", p.webhook_id, e,
         {"url": p.url, "events": ",".join(p.events), "secret": p.secret, "removed": 0})


@handles(ev.WebhookRemoved)
def _webhook_removed(conn: Connection, e: ev.Event, p: ev.WebhookRemoved) -> None:
    current = conn.execute("SELECT url, events, secret FROM webhooks WHERE id = ?", (p.webhook_id,)).fetchone()
    url, events, secret = current or ("", "", "")
    _lww(conn, "webhooks", "id", p.webhook_id, e, {"url": url, "events": events, "secret": secret, "removed": 1})
    conn.execute("UPDATE webhook_deliveries SET status = 'cancelled', last_error = 'the webhook was removed'"
                 " WHERE webhook_id = ? AND status = 'pending'", (p.webhook_id,))


@after_own
def _outbox(conn: Connection, e: ev.Event, payload: Any) -> None:
    raised = wh.notifications(payload)
    if not raised:
        return
    receivers = conn.execute("SELECT id, events FROM webhooks WHERE removed = 0").fetchall()
    now = physical_ms(e.hlc)
    for name, data in raised:
        for hook_id, events in receivers:
            if name in events.split(","):
                delivery_id = new_id("dlv")
                enqueue(conn, delivery_id, hook_id, name, wh.body(delivery_id, name, e.hlc, e.origin, data), now)


def enqueue(conn: Connection, delivery_id: str, webhook_id: str, event: str, body: bytes, now_ms: int) -> str:
    conn.execute("INSERT INTO webhook_deliveries (id, webhook_id, event, body, created_ms, next_attempt_ms)"
                 " VALUES (?, ?, ?, ?, ?, ?)", (delivery_id, webhook_id, event, body, now_ms, now_ms))
    return delivery_id


def _webhook(conn: Connection, row: tuple[Any, ...]) -> Webhook:
    counts = dict(conn.execute("SELECT status, count(*) FROM webhook_deliveries WHERE webhook_id = ?"
                               " GROUP BY status", (row[0],)).fetchall())
    return Webhook(id=row[0], url=row[1], events=row[2].split(","), created_at=wh.iso_ms(physical_ms(row[3])),
                   pending=counts.get("pending", 0), delivered=counts.get("delivered", 0),
                   failed=counts.get("failed", 0))


def webhooks(conn: Connection) -> list[Webhook]:
    rows = conn.execute("SELECT id, url, events, hlc FROM webhooks WHERE removed = 0 ORDER BY hlc").fetchall()
    return [_webhook(conn, r) for r in rows]


def find(conn: Connection, wanted: str) -> Webhook:
    """A receiver by id, or by URL when one receiver has it."""
    found = [w for w in webhooks(conn) if w.id == wanted] or [w for w in webhooks(conn) if w.url == wanted]
    if not found:
        raise NotFound(f"no webhook with id or URL {wanted!r} (see `appliance webhook list`)")
    if len(found) > 1:
        raise Conflict(f"{len(found)} webhooks have the URL {wanted!r} ({', '.join(w.id for w in found)});"
                       " name one by id")
    return found[0]


def add(url: str, events: list[str], secret: str, *, actor: str, ip: str) -> Callable[[WriteTxn], Created]:
    """A write: the receiver and its audit record (the URL and events, never the secret)."""
    url, events, secret = wh.check_url(url), wh.check_events(events), wh.check_secret(secret)

    def work(txn: WriteTxn) -> Created:
        webhook_id = new_id("wh")
        txn.append(ev.WebhookAdded(webhook_id=webhook_id, url=url, events=events, secret=secret))
        txn.append(ev.AuditRecorded(actor=actor, action="webhook.add", target=url, detail=webhook_id, ip=ip,
                                    after=",".join(events)))
        return Created(webhook=find(txn.conn, webhook_id), secret=secret)

    return work


def remove(wanted: str, *, actor: str, ip: str) -> Callable[[WriteTxn], Webhook]:
    def work(txn: WriteTxn) -> Webhook:
        hook = find(txn.conn, wanted.strip())
        txn.append(ev.WebhookRemoved(webhook_id=hook.id))
        txn.append(ev.AuditRecorded(actor=actor, action="webhook.remove", target=hook.url, detail=hook.id, ip=ip,
                                    before=",".join(hook.events)))
        return hook

    return work


def send_test(wanted: str, *, actor: str, ip: str, node: str) -> Callable[[WriteTxn], str]:
    """A write: one ``webhook.test`` delivery to a receiver, whatever its events."""
    def work(txn: WriteTxn) -> str:
        hook = find(txn.conn, wanted)
        hlc = txn.append(ev.AuditRecorded(actor=actor, action="webhook.test", target=hook.url, detail=hook.id,
                                          ip=ip)).hlc
        delivery_id = new_id("dlv")
        body = wh.body(delivery_id, wh.TEST_EVENT, hlc, node, {"webhook_id": hook.id})
        return enqueue(txn.conn, delivery_id, hook.id, wh.TEST_EVENT, body, physical_ms(hlc))

    return work


def due(conn: Connection, now_ms: int, limit: int) -> list[Due]:
    rows = conn.execute(
        "SELECT d.id, w.url, w.secret, d.event, d.body, d.attempts, d.created_ms FROM webhook_deliveries d"
        " JOIN webhooks w ON w.id = d.webhook_id WHERE d.status = 'pending' AND d.next_attempt_ms <= ?"
        " ORDER BY d.next_attempt_ms LIMIT ?", (now_ms, limit)).fetchall()
    return [Due(id=r[0], url=r[1], secret=r[2], event=r[3], body=bytes(r[4]), attempts=r[5], created_ms=r[6])
            for r in rows]


def record(conn: Connection, outcomes: list[Outcome]) -> None:
    """Each attempt into the log, and its delivery delivered, failed for good, or due again."""
    for o in outcomes:
        attempt = conn.execute("UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = ?,"
                               " last_error = ? WHERE id = ? AND status = 'pending' RETURNING attempts",
                               (o.status_code, o.error, o.delivery_id)).fetchone()
        if attempt is None:  # removed meanwhile
            continue
        conn.execute("INSERT OR REPLACE INTO webhook_attempts (delivery_id, attempt, at_ms, status_code, error,"
                     " latency_ms) VALUES (?, ?, ?, ?, ?, ?)",
                     (o.delivery_id, attempt[0], o.at_ms, o.status_code, o.error, o.latency_ms))
        if o.delivered or not o.next_attempt_ms:
            conn.execute("UPDATE webhook_deliveries SET status = ?, done_ms = ? WHERE id = ?",
                         ("delivered" if o.delivered else "failed", o.at_ms, o.delivery_id))
        else:
            conn.execute("UPDATE webhook_deliveries SET next_attempt_ms = ? WHERE id = ?",
                         (o.next_attempt_ms, o.delivery_id))


def deliveries(conn: Connection, webhook_id: str | None = None, limit: int = 50) -> list[Delivery]:
    """Newest first, each with its attempts."""
    where, args = ("WHERE d.webhook_id = ?", (webhook_id, limit)) if webhook_id else ("", (limit,))
    rows = conn.execute(
        "SELECT d.id, d.webhook_id, w.url, d.event, d.created_ms, d.status, d.attempts, d.next_attempt_ms,"
        f" d.last_status, d.last_error FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id {where}"
        " ORDER BY d.created_ms DESC, d.rowid DESC LIMIT ?", args).fetchall()
    found = []
    for r in rows:
        attempts = conn.execute("SELECT attempt, at_ms, status_code, error, latency_ms FROM webhook_attempts"
                                " WHERE delivery_id = ? ORDER BY attempt", (r[0],)).fetchall()
        found.append(Delivery(
            id=r[0], webhook_id=r[1], url=r[2], event=r[3], created_at=wh.iso_ms(r[4]), status=r[5], attempts=r[6],
            next_attempt_at=wh.iso_ms(r[7]) if r[5] == "pending" else "", last_status=r[8], last_error=r[9],
            log=[Attempt(attempt=a[0], at=wh.iso_ms(a[1]), status_code=a[2], error=a[3], latency_ms=a[4])
                 for a in attempts]))
    return found


def backlog(conn: Connection) -> tuple[int, int | None]:
    """(pending deliveries, created_ms of the oldest) on this node."""
    row = conn.execute("SELECT count(*), min(created_ms) FROM webhook_deliveries WHERE status = 'pending'").fetchone()
    return int(row[0]), row[1]
