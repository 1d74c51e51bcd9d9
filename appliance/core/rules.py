"""Keyword, regex and intent rules with canned answers or actions.

Rules run before retrieval (a match answers at once) and again at the end of the degradation
chain, where a matching rule is the last thing tried before a human.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from appliance.core.errors import InputError

RuleAction = Literal["answer", "handoff", "tool"]


class Rule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    keywords: list[str] = msgspec.field(default_factory=list)
    regex: str = ""
    intent: str = ""
    action: RuleAction = "answer"
    answer: str = ""
    # The answer in other languages, by language code ("zh"); ``answer`` serves the rest.
    answers: dict[str, str] = msgspec.field(default_factory=dict)
    tool: str = ""
    # "always": checked before retrieval; "fallback": only when every model has failed.
    stage: Literal["always", "fallback"] = "always"


class RuleSet:
    def __init__(self, rules: list[Rule]) -> None:
        self._rules = rules
        self._patterns: dict[str, re.Pattern[str]] = {}
        for rule in rules:
            if not (rule.keywords or rule.regex or rule.intent):
                raise InputError(f"rule {rule.name!r}: needs keywords, a regex or an intent")
            if rule.action == "answer" and not rule.answer:
                raise InputError(f"rule {rule.name!r}: action 'answer' needs an answer")
            if rule.regex:
                try:
                    self._patterns[rule.name] = re.compile(rule.regex, re.IGNORECASE)
                except re.error as exc:
                    raise InputError(f"rule {rule.name!r}: bad regex ({exc})") from None

    def match(self, text: str, intent: str | None) -> Rule | None:
        lowered = text.casefold()
        for rule in self._rules:
            if rule.intent and rule.intent == intent:
                return rule
            if rule.keywords and any(k.casefold() in lowered for k in rule.keywords):
                return rule
            pattern = self._patterns.get(rule.name)
            if pattern is not None and pattern.search(text):
                return rule
        return None
