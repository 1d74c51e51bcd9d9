"""On-premises AI customer-service appliance; ``AgentBuilder`` embeds its dialogue engine.

Names are imported lazily, so ``import appliance`` (and the CLI) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Agent": "appliance.core.agent",
    "AgentBuilder": "appliance.sdk",
    "Conversation": "appliance.core.agent",
    "EngineSettings": "appliance.core.agent",
    "IntentAction": "appliance.core.agent",
    "Turn": "appliance.core.agent",
    "TurnInput": "appliance.core.agent",
    "Reply": "appliance.core.types",
    "Trace": "appliance.core.types",
    "Rule": "appliance.core.rules",
    "Tool": "appliance.core.tools",
    "ModelRouter": "appliance.core.router",
    "ModelSpec": "appliance.core.routing",
    "RoutingTable": "appliance.core.routing",
    "LruCache": "appliance.core.cache",
    "pii_redaction": "appliance.core.middleware",
    "logging_middleware": "appliance.core.middleware",
    "audit_middleware": "appliance.core.middleware",
    "openai_model": "appliance.sdk",
    "builtin_model": "appliance.sdk",
    "LocalKnowledgeBase": "appliance.sdk",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'appliance' has no attribute {name!r}")
    return getattr(import_module(module), name)
