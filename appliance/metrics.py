"""A node's Prometheus metrics, kept and rendered by ``prometheus_client``.

Each Runtime owns one ``CollectorRegistry`` (never the library's process-global default: one
test process builds many nodes). Three kinds of series live in it:

- instruments the node updates as things happen (``Metrics.turns``, ``Metrics.turn_seconds``);
- figures that exist only as in-memory state (the router's per-arm counters, presence, sync
  links), read at scrape time by a collector: ``metrics.collect(fn)`` where ``fn()`` yields
  metric families;
- figures that live in the database (the queue's oldest wait): ``metrics.from_store(fn)`` where
  ``fn(conn)`` yields families; every such function runs in one read per scrape, on the store's
  reader pool, so a scrape never blocks the event loop.

Labels are declared in alphabetical order so each series reads ``name{a="..",b=".."}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from appliance.core.hlc import physical_ms
from appliance.core.router import RouterSnapshot
from appliance.store import Connection, Store, accounts, desk, webhooks
from appliance.sync.status import metrics as sync_families

if TYPE_CHECKING:
    from appliance.runtime import Runtime

disable_created_metrics()  # no `_created` series beside every counter: nobody graphs them

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Families = Iterable[Metric]


class _Callback(Collector):
    def __init__(self, collect: Callable[[], Families]) -> None:
        self._collect = collect

    def collect(self) -> Iterator[Metric]:
        yield from self._collect()


class _Scrape(Collector):
    """The registry plus the families read from the store for this one scrape."""

    def __init__(self, registry: CollectorRegistry, read: list[Metric]) -> None:
        self._registry, self._read = registry, read

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        yield from self._read


class Metrics:
    """The registry of one node, with the instruments the runtime updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # RSS, CPU seconds, open files
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._store_reads: list[Callable[[Connection], Families]] = []
        r = self.registry
        self.turns = Counter("appliance_turns", "Bot turns by the path that produced the reply.", ["source"],
                             registry=r)
        self.turn_errors = Counter("appliance_turn_errors", "Chat requests refused, by error class.", ["error"],
                                   registry=r)
        self.turn_seconds = Histogram("appliance_turn_seconds", "Time from visitor message to stored reply.",
                                      buckets=LATENCY_BUCKETS_S, registry=r)
        self.ready = Gauge("appliance_ready", "1 once the store and models are open.", registry=r)

    def collect(self, collect: Callable[[], Families]) -> None:
        """Series computed from in-memory state at every scrape."""
        self.registry.register(_Callback(collect))

    def from_store(self, read: Callable[[Connection], Families]) -> None:
        """Series read from the database at every scrape (``read`` runs on a reader thread)."""
        self._store_reads.append(read)

    async def scrape(self, store: Store) -> bytes:
        """The text exposition of every series; the store's figures read in one read."""
        reads = self._store_reads
        read = await store.read(lambda conn: [f for fn in reads for f in fn(conn)]) if reads else []
        return generate_latest(_Scrape(self.registry, read))


def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def labelled(family: GaugeMetricFamily | CounterMetricFamily,
             values: Iterable[tuple[tuple[str, ...], float]]) -> GaugeMetricFamily | CounterMetricFamily:
    for labels, value in values:
        family.add_metric(list(labels), value)
    return family


def router_families(snapshot: RouterSnapshot) -> Iterator[Metric]:
    """Per model and arm: the router's own counters."""
    labels = ["arm", "model"]
    for name, text in [
        ("requests", "Turns that reached the model."), ("errors", "Turns the model did not answer."),
        ("fallbacks", "Errors after which another model was tried."), ("retries", "Extra upstream calls."),
        ("tokens_in", "Prompt tokens."), ("tokens_out", "Completion tokens."),
        ("thumbs_down", "Visitor thumbs-down on the model's replies."),
    ]:
        counter = CounterMetricFamily(f"appliance_model_{name}", text, labels=labels)
        for arm in snapshot.arms:
            counter.add_metric([arm.arm, arm.model], getattr(arm, name))
        yield counter
    latency = GaugeMetricFamily("appliance_model_latency_ms", "Latency of answered turns (last 1,024), by quantile.",
                                labels=[*labels, "quantile"])
    down_rate = GaugeMetricFamily("appliance_model_thumbs_down_ratio", "Thumbs-down share of rated replies.",
                                  labels=labels)
    for arm in snapshot.arms:
        latency.add_metric([arm.arm, arm.model, "0.5"], arm.latency_p50_ms)
        latency.add_metric([arm.arm, arm.model, "0.99"], arm.latency_p99_ms)
        down_rate.add_metric([arm.arm, arm.model], arm.thumbs_down_rate)
    breaker = GaugeMetricFamily("appliance_model_breaker_open", "1 while the model's circuit breaker is not closed.",
                                labels=["model", "state"])
    for health in snapshot.models:
        breaker.add_metric([health.model, health.breaker], 0 if health.breaker == "closed" else 1)
    yield from (latency, down_rate, breaker)


def node_families(runtime: Runtime) -> Iterator[Metric]:
    """What a node holds in memory: group commit, the built-in model, presence, limits, router, sync."""
    transactions, items = runtime.store.write_stats
    yield labelled(GaugeMetricFamily("appliance_store_writes", "Group commit: transactions and items committed.",
                                     labels=["kind"]), [(("transactions",), transactions), (("items",), items)])
    chat_model = runtime.chat_model
    yield gauge("appliance_builtin_chat_loaded", "1 while the built-in chat model is in memory.",
                int(chat_model is not None and chat_model.loaded))
    yield gauge("appliance_desk_waiting", "Conversations waiting in the human queue.", runtime.switchboard.waiting)
    yield labelled(GaugeMetricFamily("appliance_desk_agents", "Enabled accounts by presence.", labels=["presence"]),
                   [((p,), n) for p, n in runtime.switchboard.presence_counts().items()])
    yield labelled(GaugeMetricFamily("appliance_sign_in_attempts", "Console sign-in attempts since start, by outcome.",
                                     labels=["outcome"]), [((o,), n) for o, n in runtime.signin.outcomes.items()])
    yield labelled(GaugeMetricFamily("appliance_rate_limited", "Requests refused with 429 since start, by limit.",
                                     labels=["limit"]), [((k,), n) for k, n in runtime.quotas.refused.items()])
    yield gauge("appliance_rate_limit_keys", "Visitors, addresses and conversations tracked.",
                runtime.quotas.tracked_keys())
    yield from router_families(runtime.router.snapshot())
    yield from sync_families(runtime.sync)


def store_families(conn: Connection, runtime: Runtime) -> Iterator[Metric]:
    """The desk as an operator watches it: how long the longest wait is, where open conversations
    are, whether the agents online can take more, left messages nobody has answered, and the
    webhook deliveries still to go out."""
    found = desk.figures(conn)
    now_ms = time.time_ns() // 1_000_000
    oldest_s = max(0, now_ms - physical_ms(found.oldest_queued_hlc)) / 1000 if found.oldest_queued_hlc else 0.0
    yield gauge("appliance_desk_oldest_wait_seconds",
                "How long the conversation waiting longest in the human queue has waited (0: none waits).", oldest_s)
    yield labelled(GaugeMetricFamily("appliance_desk_open_conversations", "Open conversations by owner.",
                                     labels=["owner"]), [((o,), n) for o, n in sorted(found.open_by_owner.items())])
    loads = desk.loads(conn)
    presence = runtime.switchboard.presence
    free = sum(max(0, a.capacity - loads.get(a.name, 0)) for a in accounts.accounts(conn)
               if not a.disabled and presence.status(a.name) == "online")
    yield gauge("appliance_desk_free_seats",
                "Conversations the agents online can still take (capacity minus load).", free)
    yield gauge("appliance_desk_tickets_open", "Left messages (tickets) not yet answered.", found.tickets_open)
    pending, oldest_ms = webhooks.backlog(conn)
    yield gauge("appliance_webhook_backlog", "Webhook deliveries pending on this node.", pending)
    yield gauge("appliance_webhook_oldest_pending_seconds", "Age of the oldest pending webhook delivery (0: none).",
                max(0.0, now_ms - oldest_ms) / 1000 if oldest_ms is not None else 0.0)
