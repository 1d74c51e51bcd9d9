"""A running node: config, identity, store, models and the engine, built from a Config.

Nothing here is global: tests build as many runtimes as they like. ``start()`` opens the store
at once and loads the models on worker threads in the background; until they are loaded
``ready`` is False and ``/readyz`` answers 503; a chat sent meanwhile waits for them up to one turn
budget, then is refused with a clear 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from appliance.control import ControlServer, Topic
from appliance.core.agent import Agent, EngineSettings, IntentAction, Middleware
from appliance.core.cache import LruCache
from appliance.core.config import Config
from appliance.core.desk import User
from appliance.core.errors import ApplianceError, Unavailable
from appliance.core.events import VisitorProfile
from appliance.core.images import ImageCleaner, ImageLimits
from appliance.core.middleware import logging_middleware, pii_redaction
from appliance.core.ports import ChatProvider, ReplyCache, TokenSink
from appliance.core.quotas import Quotas, limits_of
from appliance.core.router import ModelRouter
from appliance.core.routing import ModelSpec, RoutingTable
from appliance.core.tokens import VisitorTokens
from appliance.desk.agents import AgentDesk
from appliance.desk.conversations import Conversations
from appliance.desk.frames import ChatOutcome
from appliance.desk.hub import Hub
from appliance.desk.privacy import Privacy
from appliance.desk.signin import SignIn
from appliance.desk.switchboard import Switchboard
from appliance.knowledge import IntentService, KnowledgeService, embedding_model_id
from appliance.knowledge.uploads import IngestQueue
from appliance.local_model.chat import LocalChat
from appliance.local_model.embedder import LocalEmbedder
from appliance.local_model.memo import RecentEmbeddings
from appliance.local_model.paths import EMBED_FILE, ModelMissing, builtin_chat_path, builtin_model_dir
from appliance.local_model.provider import BuiltinChatProvider
from appliance.metrics import Metrics, node_families, store_families
from appliance.node import NodeIdentity
from appliance.providers.http_tool import http_tool
from appliance.providers.openai import OpenAIProvider, make_session
from appliance.providers.redis_cache import RedisReplyCache
from appliance.providers.webhooks import WebhookSender
from appliance.store import Store
from appliance.store.reply_cache import SqliteReplyCache
from appliance.store.routing import RoutingWatcher
from appliance.sync import SyncService

log = logging.getLogger("appliance")


class Runtime:
    def __init__(self, config: Config, identity: NodeIdentity, store: Store) -> None:
        self.config = config
        self.identity = identity
        self.store = store
        self.metrics = Metrics()
        self.metrics.collect(lambda: node_families(self))
        self.metrics.from_store(lambda conn: store_families(conn, self))
        self.started_at = time.monotonic()
        self.ready = False
        self.load_error: str | None = None
        self.chat_model: BuiltinChatProvider | None = None
        self.embedder: LocalEmbedder | None = None
        self.http: aiohttp.ClientSession | None = None
        self.knowledge: KnowledgeService | None = None
        self.intents: IntentService | None = None
        self.ingest = IngestQueue(lambda: self.knowledge, config.data_dir / "uploads",
                                  max_bytes=config.server.max_document_bytes)
        self.router = ModelRouter(RoutingTable(), self._provider)
        self.routing = RoutingWatcher(store, self.router.replace_table)
        self.caches: list[ReplyCache] = [LruCache(config.cache.l1_entries, config.cache.ttl_s)]
        if config.cache.redis_url:
            self.caches.append(RedisReplyCache(config.cache.redis_url, config.cache.ttl_s))
        self.caches.append(SqliteReplyCache(store, config.cache.ttl_s))
        self.agent = Agent(settings=self.engine_settings())
        self.hub = Hub()
        self.switchboard = Switchboard(store, self.hub, config.desk)
        self.signin = SignIn(store, config.security)
        self.quotas = Quotas(limits_of(config.limits))
        self.conversations = Conversations(
            store, lambda: self.agent, VisitorTokens(identity.secret, config.security.visitor_token_ttl_s),
            self.switchboard, max_text_chars=config.server.max_text_chars,
            max_image_bytes=config.server.max_image_bytes,
            images=ImageCleaner(ImageLimits(max_pixels=config.server.max_image_pixels,
                                            max_side=config.server.max_image_side)),
        )
        self.agents = AgentDesk(store, self.switchboard, max_text_chars=config.server.max_text_chars)
        self._loading: asyncio.Task[None] | None = None
        self.privacy = Privacy(store, retention_days=config.privacy.retention_days)
        self._retention: asyncio.Task[None] | None = None
        self.sync = SyncService(store, identity, config.sync, name=config.node.name, data_dir=config.data_dir,
                                on_applied=self.switchboard.replicated)
        self.webhooks = WebhookSender(store, config.webhooks)
        # What `refresh` reloads per topic (see appliance/control); a service that keeps state
        # in memory registers its own with `on_refresh`.
        self._refreshers: dict[str, list[Callable[[], Awaitable[object]]]] = {
            "routing": [self.routing.refresh], "knowledge": [self._warm_knowledge],
            "accounts": [self.switchboard.presence_changed],
        }
        self.control = ControlServer(config.data_dir, self.refresh)

    @classmethod
    def open(cls, config: Config) -> Runtime:
        identity = NodeIdentity.load(config.data_dir)
        return cls(config, identity, Store.from_config(config, identity.node_id))

    def engine_settings(self) -> EngineSettings:
        c = self.config
        return EngineSettings(
            turn_budget_s=c.engine.turn_budget_s, knowledge=c.knowledge,
            low_confidence_handoffs=c.engine.low_confidence_handoffs,
            local_max_tokens=c.models.reply_max_tokens, temperature=c.models.temperature,
            local_min_support=c.engine.local_min_support, redact_traces=c.privacy.redact_pii,
        )

    def model_path(self, configured: str, builtin: str) -> Path:
        return self.config.resolve(configured) if configured else builtin_model_dir() / builtin

    async def user_view(self, name: str) -> User:
        for user in await self.switchboard.users():
            if user.name == name:
                return user
        # A bearer token's name need not be an account: show it as what it is.
        return User(name=name, display_name=name, capacity=0, presence=self.switchboard.presence.status(name))

    def _provider(self, spec: ModelSpec) -> ChatProvider:
        """Build a routed provider; the one place API keys are read from the environment."""
        if spec.kind == "local":
            if self.chat_model is None:
                raise Unavailable("the built-in model is not loaded yet")
            return self.chat_model
        if self.http is None:
            raise Unavailable("the HTTP client is not started")
        return OpenAIProvider(spec, self.http, os.environ.get(spec.api_key_env) if spec.api_key_env else None)

    def on_refresh(self, topic: Topic, reload: Callable[[], Awaitable[object]]) -> None:
        self._refreshers.setdefault(topic, []).append(reload)

    async def refresh(self, topics: list[Topic]) -> list[str]:
        """Reload from the store what a change to ``topics`` touched, before answering the CLI
        that made it. A topic with nothing in memory (tokens and webhooks are read per use)
        needs nothing more than the committed write."""
        for topic in topics:
            for reload in self._refreshers.get(topic, []):
                await reload()
        return list(topics)

    async def _warm_knowledge(self) -> None:
        if self.knowledge is not None:
            await self.knowledge.warm()

    async def start(self) -> None:
        self.http = make_session()
        self.webhooks.start(self.http)
        await self.control.start()
        await self.switchboard.start()
        await self.sync.start()  # replication needs no models: it starts with the store
        self._loading = asyncio.create_task(self._load_models())
        if self.privacy.retention_days > 0:  # once now, then hourly
            self._retention = asyncio.create_task(self.privacy.keep())

    async def _load_models(self) -> None:
        models = self.config.models
        chat_path = (self.config.resolve(models.chat_path) if models.chat_path
                     else builtin_chat_path(models.builtin_chat))

        def load_chat() -> LocalChat:
            return LocalChat.load(chat_path, threads=models.chat_threads, n_ctx=models.chat_context)

        await self.routing.refresh()
        # With no LLM active the built-in model answers every turn: it loads before the node is
        # ready rather than making the first visitor wait. (Not in the background: llama.cpp
        # silences the whole process's stdout and stderr while it loads a model.)
        preload = models.chat_preload or self.router.table.active is None
        try:
            if not chat_path.is_file():
                raise ModelMissing(chat_path)
            embedder = await asyncio.to_thread(LocalEmbedder.load, self.model_path(models.embedding_path, EMBED_FILE),
                                               threads=models.embedding_threads)
            self.chat_model = BuiltinChatProvider(await asyncio.to_thread(load_chat) if preload else load_chat)
        except ApplianceError as exc:
            self.load_error = str(exc)
            log.error("models failed to load: %s", exc)
            return
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            log.exception("models failed to load")
            return
        self.embedder = embedder
        try:
            await self._open_knowledge(embedder)
        except ApplianceError as exc:
            self.load_error = str(exc)
            log.error("intents failed to load: %s", exc)
            return
        self.routing.start()
        self.agent = self.build_agent()
        self.ready = True
        self.metrics.ready.set(1)
        log.info("models loaded in %.2fs; ready", time.monotonic() - self.started_at)

    async def _open_knowledge(self, embedder: LocalEmbedder) -> None:
        models = self.config.models
        model_id = await asyncio.to_thread(embedding_model_id, self.model_path(models.embedding_path, EMBED_FILE))
        recent = RecentEmbeddings(embedder)
        self.knowledge = KnowledgeService(self.store, recent, self.config.knowledge, model_id=model_id)
        csv = self.config.intents.examples_csv
        examples_csv = self.config.resolve(csv) if csv else None
        self.intents = IntentService(recent, self.config.intents, examples_csv=examples_csv, store=self.store,
                                     model_id=model_id)
        await self.intents.start()
        self.intents.watch()  # console changes replicated from other nodes

    def build_agent(self) -> Agent:
        assert self.http is not None
        actions = {i.name: IntentAction(kind=i.action, answer=i.answer, answers=i.answers, tool=i.tool)
                   for i in self.config.intents.intents}
        middleware: list[Middleware] = [logging_middleware(level=logging.DEBUG)]
        if self.config.engine.redact_pii:
            middleware.append(pii_redaction)
        return Agent(
            router=self.router, local_model=self.chat_model, caches=self.caches, rules=self.config.rules,
            knowledge=self.knowledge, intents=self.intents,
            tools=[http_tool(t, self.http) for t in self.config.tools], intent_actions=actions,
            middleware=middleware,
            settings=self.engine_settings(),
        )

    async def chat(
        self, text: str, *, conversation_id: str | None, visitor_token: str | None,
        attachments: list[str] | None = None, on_token: TokenSink | None = None, language: str | None = None,
        profile: VisitorProfile | None = None,
    ) -> ChatOutcome:
        started = time.perf_counter()
        try:
            # A message sent while the models load (a restart with visitors connected) waits for
            # them rather than failing, for up to one turn budget.
            await self.wait_ready(self.config.engine.turn_budget_s)
            outcome = await self.conversations.chat(
                text, conversation_id=conversation_id, visitor_token=visitor_token, attachments=attachments,
                on_token=on_token, language=language, profile=profile,
            )
        except ApplianceError as exc:
            self.metrics.turn_errors.labels(error=type(exc).__name__).inc()
            raise
        self.metrics.turns.labels(source=outcome.reply.source if outcome.reply else "human").inc()
        self.metrics.turn_seconds.observe(time.perf_counter() - started)
        return outcome

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait for the models to load (at most ``timeout_s``); Unavailable if they did not."""
        if not self.ready and self.load_error is None and self._loading is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._loading), timeout_s)
        if not self.ready:
            raise Unavailable(self.load_error or "the appliance is starting: models are still loading")

    async def close(self) -> None:
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        if self._retention is not None:
            self._retention.cancel()
        await self.ingest.close()
        if self.intents is not None:
            await self.intents.stop()
        await self.control.stop()
        await self.sync.stop()
        await self.switchboard.stop()
        await self.webhooks.stop()
        await self.routing.stop()
        await self.router.aclose()
        for level in self.caches:
            if isinstance(level, RedisReplyCache):
                await level.close()
        if self.http is not None:
            await self.http.close()
        await asyncio.to_thread(self.store.close)
