"""The routing table: which models exist, which one is active, the canary arm, the fallback order.

Every operation is a pure function returning a new table (tables are frozen), so a running server
swaps the whole table atomically and an in-flight turn keeps the table it started with.

Canary arms are chosen per conversation by a stable hash of its id, uniform in [0, 100): a
conversation is in the canary arm when its point is below ``canary_percent``. Raising the percent
therefore only moves conversations into the canary, never out of it.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Literal

import msgspec

from appliance.core.errors import InputError, NotFound, Unavailable

ModelKind = Literal["openai", "local"]
Arm = Literal["active", "canary", "fallback"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ModelSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One model endpoint. ``rpm``/``tpm`` of 0 mean unlimited; ``api_key_env`` names the
    environment variable holding the key (the key itself is never stored)."""

    name: str
    kind: ModelKind = "openai"
    base_url: str = ""
    model: str = ""
    api_key_env: str = ""
    rpm: int = 0
    tpm: int = 0
    max_concurrency: int = 64
    timeout_s: float = 30.0
    max_retries: int = 2
    vision: bool = False


class RoutingTable(msgspec.Struct, frozen=True, kw_only=True):
    models: dict[str, ModelSpec] = msgspec.field(default_factory=dict)
    active: str | None = None
    previous_active: str | None = None
    canary: str | None = None
    canary_percent: float = 0.0
    fallback: list[str] = msgspec.field(default_factory=list)


def validate_spec(spec: ModelSpec) -> None:
    if not _NAME_RE.match(spec.name):
        raise InputError(
            f"invalid model name {spec.name!r}: use 1-64 letters, digits, '.', '_' or '-'",
        )
    if spec.kind == "openai":
        if len(spec.base_url) > 2000 or len(spec.model) > 200 or len(spec.api_key_env) > 200:
            raise InputError(f"model {spec.name!r}: base URL (2000), model id and key variable (200) are too long")
        if not spec.base_url.startswith(("http://", "https://")):
            raise InputError(f"model {spec.name!r}: --base-url must start with http:// or https://")
        if not spec.model:
            raise InputError(f"model {spec.name!r}: --model (the upstream model id) is required")
    if spec.rpm < 0 or spec.tpm < 0:
        raise InputError(f"model {spec.name!r}: rpm and tpm must be 0 (unlimited) or positive")
    if spec.max_concurrency < 1:
        raise InputError(f"model {spec.name!r}: max_concurrency must be at least 1")
    if not (spec.timeout_s > 0 and math.isfinite(spec.timeout_s)):
        raise InputError(f"model {spec.name!r}: timeout_s must be a positive number of seconds")
    if not 0 <= spec.max_retries <= 10:
        raise InputError(f"model {spec.name!r}: max_retries must be between 0 and 10")


def _require(table: RoutingTable, name: str) -> ModelSpec:
    spec = table.models.get(name)
    if spec is None:
        known = ", ".join(sorted(table.models)) or "none"
        raise NotFound(f"no model named {name!r} (known: {known})")
    return spec


def add_model(table: RoutingTable, spec: ModelSpec, *, replace: bool = False) -> RoutingTable:
    """Add a model; with ``replace`` an existing one of that name is updated in place."""
    validate_spec(spec)
    if spec.name in table.models and not replace:
        raise InputError(f"model {spec.name!r} already exists; remove it first or replace it")
    return msgspec.structs.replace(table, models={**table.models, spec.name: spec})


def remove_model(table: RoutingTable, name: str) -> RoutingTable:
    _require(table, name)
    if name == table.active:
        raise InputError(f"model {name!r} is active; switch to another model with 'use' first")
    if name == table.canary:
        raise InputError(f"model {name!r} is the canary; promote or roll back first")
    models = {k: v for k, v in table.models.items() if k != name}
    return msgspec.structs.replace(
        table, models=models, fallback=[n for n in table.fallback if n != name],
        previous_active=None if table.previous_active == name else table.previous_active,
    )


def use(table: RoutingTable, name: str) -> RoutingTable:
    """Make ``name`` the active model for all conversations; the old one is kept for rollback."""
    _require(table, name)
    if name == table.active:
        return table
    canary_cleared = table.canary == name
    return msgspec.structs.replace(
        table, active=name, previous_active=table.active,
        canary=None if canary_cleared else table.canary,
        canary_percent=0.0 if canary_cleared else table.canary_percent,
    )


def set_canary(table: RoutingTable, name: str | None, percent: float = 0.0) -> RoutingTable:
    """Send ``percent`` % of conversations to ``name``; ``name=None`` ends the canary."""
    if name is None:
        return msgspec.structs.replace(table, canary=None, canary_percent=0.0)
    _require(table, name)
    if table.active is None:
        raise InputError("no active model: choose one with 'use' before starting a canary")
    if name == table.active:
        raise InputError(f"model {name!r} is already the active model")
    if not (math.isfinite(percent) and 0.0 <= percent <= 100.0):
        raise InputError(f"canary percent must be between 0 and 100, got {percent}")
    return msgspec.structs.replace(table, canary=name, canary_percent=float(percent))


def promote(table: RoutingTable) -> RoutingTable:
    """The canary becomes the active model for everyone; the old active is kept for rollback."""
    if table.canary is None:
        raise InputError("there is no canary to promote")
    return msgspec.structs.replace(
        table, active=table.canary, previous_active=table.active, canary=None, canary_percent=0.0,
    )


def rollback(table: RoutingTable) -> RoutingTable:
    """Abort a running canary; with none, switch back to the previously active model."""
    if table.canary is not None:
        return msgspec.structs.replace(table, canary=None, canary_percent=0.0)
    if table.previous_active is None:
        raise InputError("nothing to roll back: no canary and no previously active model")
    _require(table, table.previous_active)
    return msgspec.structs.replace(table, active=table.previous_active, previous_active=table.active)


def set_fallback(table: RoutingTable, names: list[str]) -> RoutingTable:
    """The models to try, in order, after the conversation's arm fails (duplicates dropped)."""
    for name in names:
        _require(table, name)
    return msgspec.structs.replace(table, fallback=list(dict.fromkeys(names)))


def conversation_point(conversation_id: str) -> float:
    """A stable point in [0, 100) for a conversation id."""
    digest = hashlib.sha256(conversation_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 * 100.0


def choose_arm(table: RoutingTable, conversation_id: str) -> tuple[str, Arm]:
    """The model and arm that serve this conversation; sticky while the table is unchanged."""
    if table.active is None:
        raise Unavailable("no active model: choose one with 'appliance model use NAME'")
    if (
        table.canary is not None and table.canary_percent > 0
        and conversation_point(conversation_id) < table.canary_percent
    ):
        return table.canary, "canary"
    return table.active, "active"


def attempt_order(table: RoutingTable, conversation_id: str) -> list[str]:
    """The chosen arm's model first, then the fallback list, without repeats.

    With no active model only the fallback list remains (possibly empty).
    """
    first = [choose_arm(table, conversation_id)[0]] if table.active is not None else []
    return list(dict.fromkeys([*first, *table.fallback]))
