"""What ``appliance sync status`` and ``/metrics`` report, and the file that carries it.

The server writes ``sync-status.json`` beside the database once a second (atomically: a
temporary file renamed over the old one); the CLI reads it together with the database, so it
tells the truth about a server running in another process, and says so when none is.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from appliance.core.hlc import physical_ms
from appliance.store import Connection
from appliance.store.log import Stream, count_after, first_hlc_after, marks
from appliance.sync import wire

if TYPE_CHECKING:
    from appliance.sync.service import SyncService

STATUS_FILE = "sync-status.json"
STALE_AFTER_S = 5.0


class StatusFile:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / STATUS_FILE

    def write(self, state: dict[str, Any]) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)

    def read(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return state


def lag(conn: Connection, peer_marks: dict[Stream, int], now_ms: int) -> dict[str, dict[str, float]]:
    """Per origin this node holds more of than the peer acknowledged: how many events the peer
    lacks (``backlog``) and the age in seconds of the oldest of them (``lag_s``)."""
    behind: dict[str, dict[str, float]] = {}
    for stream, highest in marks(conn).items():
        theirs = peer_marks.get(stream, 0)
        if highest <= theirs:
            continue
        oldest = first_hlc_after(conn, stream, theirs)
        entry = behind.setdefault(stream[0], {"backlog": 0, "lag_s": 0.0})
        entry["backlog"] += count_after(conn, stream, theirs)
        if oldest:
            entry["lag_s"] = max(entry["lag_s"], round(max(0, now_ms - physical_ms(oldest)) / 1000, 3))
    return behind


async def snapshot(service: SyncService, *, running: bool) -> dict[str, Any]:
    now_ms = time.time_ns() // 1_000_000
    links = list(service.links.values())
    # A peer that never said what it holds has an unknown backlog (None), not everything.
    behind = await service.store.read(
        lambda conn: [lag(conn, link.peer_marks, now_ms) if link.peer_marks else None for link in links])
    previous = service.rate_base
    peers = []
    counts = {}
    for link, origins in zip(links, behind, strict=True):
        totals = (link.events_in, link.events_out, link.bytes_in, link.bytes_out)
        counts[link.node_id] = (now_ms, totals)
        then_ms, then = previous.get(link.node_id, (now_ms, totals))
        seconds = max((now_ms - then_ms) / 1000, 1e-3)
        rates = [round((a - b) / seconds, 1) if now_ms > then_ms else 0.0 for a, b in zip(totals, then, strict=True)]
        peers.append({
            "node_id": link.node_id, "name": link.name, "address": link.address,
            "connected": link.connected and running, "remote": link.remote if link.connected else "",
            "connected_since_ms": link.connected_since_ms if link.connected else 0,
            "last_error": link.last_error, "last_error_ms": link.last_error_ms, "notice": link.notice,
            "backlog": None if origins is None else int(sum(o["backlog"] for o in origins.values())),
            "lag_s": None if origins is None else max((o["lag_s"] for o in origins.values()), default=0.0),
            "origins": origins or {}, "peer_marks": wire.to_marks(link.peer_marks),
            "events_in": link.events_in, "events_out": link.events_out,
            "bytes_in": link.bytes_in, "bytes_out": link.bytes_out, "collisions": link.collisions,
            "events_in_per_s": rates[0], "events_out_per_s": rates[1],
            "bytes_in_per_s": rates[2], "bytes_out_per_s": rates[3],
        })
    service.rate_base = counts
    return {
        "updated_ms": now_ms, "running": running, "node_id": service.node_id, "name": service.name,
        "listening": service.listening, "listen_error": service.listen_error,
        "refused": dict(service.refused), "peers": peers,
    }


def metrics(service: SyncService) -> Iterator[Metric]:
    """The status as Prometheus families (backlog and lag as of the last status snapshot)."""
    peer = ["name", "peer"]
    connected = GaugeMetricFamily("appliance_sync_peer_connected", "1 while a session with the paired peer is up.",
                                  labels=peer)
    events = CounterMetricFamily("appliance_sync_events", "Events exchanged with the peer, by direction.",
                                 labels=["direction", *peer])
    sent = CounterMetricFamily("appliance_sync_bytes", "Bytes exchanged with the peer, by direction.",
                               labels=["direction", *peer])
    backlog = GaugeMetricFamily("appliance_sync_backlog_events",
                                "Events this node holds that the peer has not acknowledged.", labels=peer)
    lag_s = GaugeMetricFamily("appliance_sync_lag_seconds", "Age of the oldest event the peer has not acknowledged.",
                              labels=peer)
    collisions = CounterMetricFamily("appliance_sync_collisions",
                                     "Events that arrived under a number holding another.", labels=peer)
    refused = CounterMetricFamily("appliance_sync_refused", "Connections refused in the handshake, by reason.",
                                  labels=["reason"])
    reported = {p["node_id"]: p for p in service.last_status.get("peers", [])}
    for link in service.links.values():
        labels = [link.name, link.node_id[:16]]
        connected.add_metric(labels, int(link.connected))
        events.add_metric(["in", *labels], link.events_in)
        events.add_metric(["out", *labels], link.events_out)
        sent.add_metric(["in", *labels], link.bytes_in)
        sent.add_metric(["out", *labels], link.bytes_out)
        collisions.add_metric(labels, link.collisions)
        backlog.add_metric(labels, reported.get(link.node_id, {}).get("backlog") or 0)
        lag_s.add_metric(labels, reported.get(link.node_id, {}).get("lag_s") or 0.0)
    for reason, count in service.refused.items():
        refused.add_metric([reason], count)
    yield from (connected, events, sent, backlog, lag_s, collisions, refused)
