"""``AgentBuilder``: the dialogue engine assembled in code, the same one the server runs."""

from __future__ import annotations

from typing import Self

from appliance.core.agent import Agent, EngineSettings, FallbackHandler, IntentAction, Middleware
from appliance.core.ports import ChatProvider, ChatRouter, IntentClassifier, KnowledgeBase, LocalChatModel, ReplyCache
from appliance.core.router import ModelRouter
from appliance.core.routing import ModelSpec, RoutingTable
from appliance.core.rules import Rule
from appliance.core.tools import Tool


def single_model_router(provider: ChatProvider) -> ModelRouter:
    """A router with one model and default traffic control (breaker, retries)."""
    spec = ModelSpec(name=provider.name, kind="local", vision=provider.vision)
    return ModelRouter(RoutingTable(models={spec.name: spec}, active=spec.name), lambda _: provider)


class AgentBuilder:
    def __init__(self) -> None:
        self._router: ChatRouter | None = None
        self._local: LocalChatModel | None = None
        self._knowledge: KnowledgeBase | None = None
        self._intents: IntentClassifier | None = None
        self._intent_actions: dict[str, IntentAction] = {}
        self._rules: list[Rule] = []
        self._caches: list[ReplyCache] = []
        self._tools: list[Tool] = []
        self._middleware: list[Middleware] = []
        self._fallback: FallbackHandler | None = None
        self._settings = EngineSettings()

    def with_model(self, model: ChatProvider) -> Self:
        """The LLM: one provider, behind a router with a circuit breaker and retries."""
        self._router = single_model_router(model)
        return self

    def with_router(self, router: ChatRouter) -> Self:
        """Several models with routing, canary and fallback (see ``ModelRouter``)."""
        self._router = router
        return self

    def with_local_model(self, model: LocalChatModel) -> Self:
        """The built-in model the degradation chain falls back to."""
        self._local = model
        return self

    def with_knowledge_base(self, knowledge: KnowledgeBase) -> Self:
        self._knowledge = knowledge
        return self

    def with_intents(self, classifier: IntentClassifier, actions: dict[str, IntentAction] | None = None) -> Self:
        self._intents = classifier
        self._intent_actions = actions or {}
        return self

    def with_rule(self, rule: Rule) -> Self:
        self._rules.append(rule)
        return self

    def with_cache(self, cache: ReplyCache) -> Self:
        self._caches.append(cache)
        return self

    def with_tool(self, tool: Tool) -> Self:
        self._tools.append(tool)
        return self

    def with_middleware(self, middleware: Middleware) -> Self:
        self._middleware.append(middleware)
        return self

    def with_fallback_handler(self, handler: FallbackHandler) -> Self:
        """Called when every model failed and no extractive answer or rule fits, before handoff."""
        self._fallback = handler
        return self

    def with_settings(self, settings: EngineSettings) -> Self:
        self._settings = settings
        return self

    def build(self) -> Agent:
        return Agent(
            router=self._router, local_model=self._local, knowledge=self._knowledge, intents=self._intents,
            intent_actions=self._intent_actions, rules=self._rules, caches=self._caches, tools=self._tools,
            fallback_handler=self._fallback, middleware=self._middleware, settings=self._settings,
        )
