"""The intent examples the classifier learns from: the config's (and its CSV's), layered with the
ones admins add or remove in the console.

Console changes are events (``intent.example.added`` / ``intent.example.removed``), one row per
``(intent, text)`` in the store, last writer wins by ``(hlc, origin)``. The examples in force are
the config's minus those removed, plus those added. An example may be added to an intent the
config does not name: that makes a new intent, classified like any other, whose action is
``none`` (traces show it; it routes nothing). Removing a config example hides it until it is
added again; the config file itself is never rewritten.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from appliance.core.errors import Conflict, InputError, NotFound

MAX_EXAMPLE_CHARS = 500
MAX_INTENT_CHARS = 64
_INTENT_NAME = re.compile(r"\w[\w.-]*")
_SPACE = re.compile(r"\s+")

Origin = Literal["config", "console"]


class IntentExample(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    intent: str
    text: str
    origin: Origin


class StoredExample(msgspec.Struct, frozen=True, kw_only=True):
    """A console change as projected: the latest of an ``(intent, text)``'s adds and removes."""

    intent: str
    text: str
    removed: bool


def example_id(intent: str, text: str) -> str:
    """Stable across nodes: the same example added at two sites is one row."""
    return hashlib.sha256(f"{intent}\x1f{text}".encode()).hexdigest()[:16]


def clean_text(text: str) -> str:
    """One line of text, surrounding and repeated spaces removed; ``InputError`` naming ``text``."""
    cleaned = _SPACE.sub(" ", text).strip()
    if not cleaned:
        raise InputError("text: must not be empty")
    if len(cleaned) > MAX_EXAMPLE_CHARS:
        raise InputError(f"text: at most {MAX_EXAMPLE_CHARS} characters (got {len(cleaned)})")
    return cleaned


def check_intent_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_INTENT_CHARS or not _INTENT_NAME.fullmatch(name):
        raise InputError(f"intent: {name!r} is not an intent name (letters, digits, _ . -; at most "
                         f"{MAX_INTENT_CHARS} characters)")
    return name


def layered(configured: Iterable[tuple[str, str]], stored: Iterable[StoredExample]) -> list[IntentExample]:
    """The examples in force, in a stable order: the config's ``(text, intent)`` pairs first, in
    their order, without those removed in the console, then the console's additions."""
    changes = {(s.intent, s.text): s.removed for s in stored}
    seen: set[tuple[str, str]] = set()
    found: list[IntentExample] = []
    for text, intent in configured:
        text = _SPACE.sub(" ", text).strip()
        key = (intent, text)
        if not text or key in seen or changes.get(key, False):
            continue
        seen.add(key)
        found.append(IntentExample(id=example_id(intent, text), intent=intent, text=text, origin="config"))
    for (intent, text), removed in changes.items():
        if not removed and (intent, text) not in seen:
            seen.add((intent, text))
            found.append(IntentExample(id=example_id(intent, text), intent=intent, text=text, origin="console"))
    return found


def check_addition(examples: Sequence[IntentExample], intent: str, text: str) -> None:
    """``Conflict`` when ``text`` already teaches an intent (this one or another)."""
    folded = text.casefold()
    for example in examples:
        if example.text.casefold() == folded:
            where = "this intent" if example.intent == intent else f"intent {example.intent!r}"
            raise Conflict(f"text: {text!r} is already an example of {where}")


def find_example(examples: Sequence[IntentExample], intent: str, wanted: str) -> IntentExample:
    """An example in force by id; ``NotFound`` naming the intent or the example."""
    of_intent = [e for e in examples if e.intent == intent]
    if not of_intent:
        raise NotFound(f"intent: no intent named {intent!r}")
    found = next((e for e in of_intent if e.id == wanted), None)
    if found is None:
        raise NotFound(f"example: intent {intent!r} has no example with id {wanted!r}")
    return found
