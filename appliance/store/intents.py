"""Intent examples added or removed in the console (see :mod:`appliance.core.intent_examples`).

One row per ``(intent, text)``, keyed by :func:`~appliance.core.intent_examples.example_id`,
last writer wins by ``(hlc, origin)`` between the adds and removes of every node. The writes
check the change against the examples in force (the config's, passed in, layered with these
rows) inside the transaction that appends it, and audit it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from appliance.core import events as ev
from appliance.core import intent_examples as ie
from appliance.store.apply import _lww, handles
from appliance.store.db import Connection

if TYPE_CHECKING:  # the writer imports apply, which imports this module
    from appliance.store.writer import WriteTxn

Configured = Sequence[tuple[str, str]]  # (text, intent) from the config and its CSV


_VERSION = "intent_examples.version"


def _changed(conn: Connection, e: ev.Event, intent: str, text: str, removed: bool) -> None:
    _lww(conn, "intent_examples", "id", ie.example_id(intent, text), e,
         {"intent": intent, "text": text, "removed": int(removed)})
    conn.execute("INSERT INTO node_state (key, value) VALUES (?, 1)"
                 " ON CONFLICT (key) DO UPDATE SET value = value + 1", (_VERSION,))


@handles(ev.IntentExampleAdded)
def _example_added(conn: Connection, e: ev.Event, p: ev.IntentExampleAdded) -> None:
    _changed(conn, e, p.intent, p.text, False)


@handles(ev.IntentExampleRemoved)
def _example_removed(conn: Connection, e: ev.Event, p: ev.IntentExampleRemoved) -> None:
    _changed(conn, e, p.intent, p.text, True)


def stored_examples(conn: Connection) -> list[ie.StoredExample]:
    rows = conn.execute("SELECT intent, text, removed FROM intent_examples ORDER BY hlc, id").fetchall()
    return [ie.StoredExample(intent=r[0], text=r[1], removed=bool(r[2])) for r in rows]


def version(conn: Connection) -> int:
    """Moves whenever a console change is applied here, local or replicated (even one that loses
    to a newer change, or changes a row older than the newest)."""
    row = conn.execute("SELECT value FROM node_state WHERE key = ?", (_VERSION,)).fetchone()
    return int(row[0]) if row else 0


def add_example(configured: Configured, intent: str, text: str, *, actor: str, ip: str
                ) -> Callable[[WriteTxn], ie.IntentExample]:
    """A write: teach ``intent`` the utterance ``text`` (a new intent when none has that name)."""
    intent, text = ie.check_intent_name(intent), ie.clean_text(text)

    def work(txn: WriteTxn) -> ie.IntentExample:
        ie.check_addition(ie.layered(configured, stored_examples(txn.conn)), intent, text)
        txn.append(ev.IntentExampleAdded(intent=intent, text=text))
        txn.append(ev.AuditRecorded(actor=actor, action="intent.example.add", target=intent, ip=ip, after=text))
        return ie.IntentExample(id=ie.example_id(intent, text), intent=intent, text=text, origin="console")

    return work


def remove_example(configured: Configured, intent: str, wanted: str, *, actor: str, ip: str
                   ) -> Callable[[WriteTxn], ie.IntentExample]:
    """A write: stop teaching the example ``wanted`` (an id) of ``intent``, wherever it came from."""
    def work(txn: WriteTxn) -> ie.IntentExample:
        example = ie.find_example(ie.layered(configured, stored_examples(txn.conn)), intent, wanted)
        txn.append(ev.IntentExampleRemoved(intent=example.intent, text=example.text))
        txn.append(ev.AuditRecorded(actor=actor, action="intent.example.remove", target=intent,
                                    detail=example.origin, ip=ip, before=example.text))
        return example

    return work
