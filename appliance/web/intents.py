"""The admin API of intents and rules (``intents.manage``): the intents with their examples, the
rules (read-only: they live in the config), examples added and removed, a sentence tried.

An example added or removed is an event (replicated, audited as ``intent.example.add`` /
``intent.example.remove``) layered over the config's examples (see
:mod:`appliance.core.intent_examples`); the answer comes once the classifier of this node has been
retrained on it, and says how long that took (``applied_s``).
"""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import Provide

from appliance.core import intent_examples as ie
from appliance.core.errors import InputError, Unavailable
from appliance.core.intents import Gate
from appliance.core.rules import Rule, RuleSet
from appliance.knowledge.intents import IntentService, Training
from appliance.runtime import Runtime
from appliance.store import intents as stored
from appliance.web.auth import Principal, principal


class ExampleCounts(msgspec.Struct, kw_only=True):
    config: int
    console: int
    total: int


class IntentOut(msgspec.Struct, kw_only=True):
    name: str
    action: str  # none, handoff, answer, tool; ``none`` for an intent made in the console
    origin: ie.Origin  # where the intent is defined: the config, or only by console examples
    examples: list[ie.IntentExample]
    counts: ExampleCounts


class RuleOut(msgspec.Struct, kw_only=True):
    name: str
    keywords: list[str]
    regex: str
    intent: str
    action: str
    stage: str


class IntentsOut(msgspec.Struct, kw_only=True):
    intents: list[IntentOut]
    rules: list[RuleOut]
    training: Training
    gate: Gate | None  # the learned out-of-scope gate; None before any intent has an example
    max_example_chars: int


class ExampleIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: str


class ChangeOut(msgspec.Struct, kw_only=True):
    example: ie.IntentExample
    applied_s: float  # retraining this node's classifier took this long (0: nothing to retrain)
    training: Training


class TryIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    text: str


class Ranked(msgspec.Struct, kw_only=True):
    intent: str
    confidence: float


class TryOut(msgspec.Struct, kw_only=True):
    text: str
    intent: str | None  # the likeliest intent, even out of scope (then it would not route)
    confidence: float
    similarity: float
    in_scope: bool
    action: str  # what the intent would do in a turn: its action when in scope, else none
    top: list[Ranked]
    rule: RuleOut | None  # the rule that would fire (checked before retrieval), if any
    stage: Literal["intent", "rule", "none"]  # what would answer first: the intent's action, a rule, neither


async def intents_admin(request: Request[object, object, object], runtime: Runtime) -> Principal:
    who = await principal(request, runtime)
    who.require("intents.manage")
    return who


def _service(runtime: Runtime) -> IntentService:
    if runtime.intents is None:
        raise Unavailable(runtime.load_error or "the intent classifier is still loading")
    return runtime.intents


def _rule(rule: Rule) -> RuleOut:
    return RuleOut(name=rule.name, keywords=list(rule.keywords), regex=rule.regex, intent=rule.intent,
                   action=rule.action, stage=rule.stage)


def _action(service: IntentService, name: str | None) -> str:
    found = service.intent(name)
    return found.action if found is not None else "none"


def intents_out(service: IntentService, rules: list[Rule]) -> IntentsOut:
    names = [intent.name for intent in service.config.intents]
    for example in service.examples:
        if example.intent not in names:
            names.append(example.intent)
    found = []
    for name in names:
        examples = [e for e in service.examples if e.intent == name]
        console = sum(e.origin == "console" for e in examples)
        found.append(IntentOut(
            name=name, action=_action(service, name), examples=examples,
            origin="config" if service.intent(name) or any(label == name for _, label in service.configured)
            else "console",
            counts=ExampleCounts(config=len(examples) - console, console=console, total=len(examples))))
    model = service.model
    return IntentsOut(intents=found, rules=[_rule(r) for r in rules], training=service.training,
                      gate=model.gate if model is not None else None, max_example_chars=ie.MAX_EXAMPLE_CHARS)


class IntentsController(Controller):
    path = "/api/v1/admin/intents"
    dependencies = {"who": Provide(intents_admin)}
    tags = ["admin"]

    @get("/", summary="The intents with their examples (from the config or the console), and the rules")
    async def list_intents(self, runtime: Runtime, who: Principal) -> IntentsOut:
        return intents_out(_service(runtime), runtime.config.rules)

    @post("/{intent:str}/examples", status_code=201,
          summary="Teach an intent an example (a new intent, action none, if none has the name); live at once")
    async def add_example(self, intent: str, data: ExampleIn, runtime: Runtime, who: Principal) -> ChangeOut:
        service = _service(runtime)
        example = await runtime.store.write(
            stored.add_example(service.configured, intent, data.text, actor=who.actor, ip=who.ip))
        return await _applied(service, example)

    @delete("/{intent:str}/examples/{example_id:str}", status_code=200,
            summary="Stop teaching an example (from the config or the console); live at once")
    async def remove_example(self, intent: str, example_id: str, runtime: Runtime, who: Principal) -> ChangeOut:
        service = _service(runtime)
        example = await runtime.store.write(
            stored.remove_example(service.configured, intent, example_id, actor=who.actor, ip=who.ip))
        return await _applied(service, example)

    @post("/try", status_code=200, summary="Classify a sentence: intent, confidence, top 3, scope, the rule that fires")
    async def try_text(self, data: TryIn, runtime: Runtime, who: Principal) -> TryOut:
        service = _service(runtime)
        text = data.text.strip()
        if not text:
            raise InputError("text: must not be empty")
        limit = runtime.config.server.max_text_chars
        if len(text) > limit:
            raise InputError(f"text: at most {limit} characters (got {len(text)})")
        prediction = await service.predict(text)
        in_scope = prediction is not None and prediction.in_scope
        intent = prediction.label if prediction is not None else None
        rule = RuleSet([r for r in runtime.config.rules if r.stage == "always"]).match(
            text, intent if in_scope else None)
        action = _action(service, intent) if in_scope else "none"
        return TryOut(
            text=text, intent=intent, in_scope=in_scope, action=action,
            confidence=round(prediction.confidence, 4) if prediction else 0.0,
            similarity=round(prediction.similarity, 4) if prediction else 0.0,
            top=[Ranked(intent=name, confidence=round(p, 4)) for name, p in (prediction.top if prediction else ())],
            rule=_rule(rule) if rule is not None else None,
            stage="intent" if action != "none" else "rule" if rule is not None else "none",
        )


async def _applied(service: IntentService, example: ie.IntentExample) -> ChangeOut:
    retrained = await service.refresh()
    return ChangeOut(example=example, applied_s=service.training.seconds if retrained else 0.0,
                     training=service.training)


ROUTES = [IntentsController]
