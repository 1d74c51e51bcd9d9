"""Intent examples changed in the console: events projected by the store, replicated to a peer
(``WriteTxn.insert``, the same ``apply``), layered over the config's examples, last writer wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.core import intent_examples as ie
from appliance.core.errors import Conflict, InputError, NotFound
from appliance.store import Store
from appliance.store import intents as stored
from tests.store.test_privacy_tombstones import ship

CONFIG = [("I need a human", "human"), ("转人工", "human"), ("hello", "greeting")]


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    a, b = Store.open(tmp_path / "a.db", "node-a"), Store.open(tmp_path / "b.db", "node-b")
    yield a, b
    a.close()
    b.close()


def in_force(store: Store) -> list[tuple[str, str, str]]:
    return [(e.intent, e.text, e.origin) for e in ie.layered(CONFIG, store.read_sync(stored.stored_examples))]


def add(store: Store, intent: str, text: str) -> ie.IntentExample:
    return store.write_sync(stored.add_example(CONFIG, intent, text, actor="admin", ip="127.0.0.1"))


def remove(store: Store, intent: str, example_id: str) -> ie.IntentExample:
    return store.write_sync(stored.remove_example(CONFIG, intent, example_id, actor="admin", ip="127.0.0.1"))


def test_added_and_removed_examples_layer_over_the_config_and_replicate(stores: tuple[Store, Store]) -> None:
    a, b = stores
    add(a, "human", "  I want to complain   to your manager ")
    add(a, "human", "我要投诉你们经理")
    add(a, "branch_hours", "when does the branch open")  # a new intent, only in the store
    config_example = next(e for e in ie.layered(CONFIG, []) if e.text == "转人工")
    remove(a, "human", config_example.id)
    expected = [("human", "I need a human", "config"), ("greeting", "hello", "config"),
                ("human", "I want to complain to your manager", "console"), ("human", "我要投诉你们经理", "console"),
                ("branch_hours", "when does the branch open", "console")]
    assert in_force(a) == expected

    ship(a, b)
    assert in_force(b) == expected
    audit = a.read_sync(lambda c: c.execute("SELECT action, target, before, after FROM audit ORDER BY seq").fetchall())
    assert audit == [("intent.example.add", "human", "", "I want to complain to your manager"),
                     ("intent.example.add", "human", "", "我要投诉你们经理"),
                     ("intent.example.add", "branch_hours", "", "when does the branch open"),
                     ("intent.example.remove", "human", "转人工", "")]


def test_the_later_of_an_add_and_a_remove_at_two_sites_wins_on_both(stores: tuple[Store, Store]) -> None:
    a, b = stores
    made = add(a, "human", "let me speak to a supervisor")
    sent = ship(a, b)
    remove(b, "human", made.id)  # later by hybrid clock than the add it saw
    ship(b, a)
    assert ("human", "let me speak to a supervisor", "console") not in in_force(a)
    add(a, "human", "let me speak to a supervisor")  # taught again, later still
    ship(a, b, sent)
    assert ("human", "let me speak to a supervisor", "console") in in_force(b)
    assert in_force(a) == in_force(b)


def test_bad_changes_name_what_is_wrong(stores: tuple[Store, Store]) -> None:
    a, _ = stores
    with pytest.raises(InputError, match=r"^text: must not be empty"):
        add(a, "human", "   ")
    with pytest.raises(InputError, match=r"^text: at most 500 characters"):
        add(a, "human", "x" * 501)
    with pytest.raises(InputError, match=r"^intent: 'a/b' is not an intent name"):
        add(a, "a/b", "hello there")
    with pytest.raises(Conflict, match="already an example of intent 'greeting'"):
        add(a, "human", "HELLO")
    with pytest.raises(NotFound, match=r"^intent: no intent named 'nope'"):
        remove(a, "nope", "0123")
    with pytest.raises(NotFound, match=r"^example: intent 'human' has no example with id '0123'"):
        remove(a, "human", "0123")
    assert a.read_sync(stored.stored_examples) == []
