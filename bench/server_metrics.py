"""The appliance's own ``/metrics`` around a measured run: server-side turn time and group commit.

``appliance_turn_seconds`` covers a whole visitor turn inside the server (both durable store
appends and the engine), so comparing its mean with wrk's mean latency and the traces' engine
total splits a request into: outside the handler (HTTP, queueing), store and bookkeeping, engine.
"""

from __future__ import annotations

import re
import urllib.request

_LE = re.compile(r'le="([0-9.e+-]+)"')
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def scrape(url: str) -> dict[str, float]:
    """Every sample of ``/metrics``, keyed by ``name{labels}``."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if (match := _LINE.match(line)) is not None:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def _total(samples: dict[str, float], name: str, labels: str = "") -> float:
    return sum(v for k, v in samples.items() if k.split("{")[0] == name and labels in k)


def between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    def delta(name: str, labels: str = "") -> float:
        return _total(after, name, labels) - _total(before, name, labels)

    turns = delta("appliance_turn_seconds_count")
    buckets = sorted({float(m.group(1)) for k in after if (m := _LE.search(k)) and
                      k.startswith("appliance_turn_seconds_bucket")})
    below = {le: delta("appliance_turn_seconds_bucket", f'le="{le:g}"') for le in buckets}
    transactions = delta("appliance_store_writes", 'kind="transactions"')
    items = delta("appliance_store_writes", 'kind="items"')
    return {
        "turns": turns,
        "turn_mean_ms": round(1000 * delta("appliance_turn_seconds_sum") / turns, 2) if turns else 0.0,
        "turn_p50_at_most_ms": _bound(below, turns, 0.50),
        "turn_p99_at_most_ms": _bound(below, turns, 0.99),
        "turns_over_1s": int(turns - below.get(1.0, turns)),
        "store_transactions": transactions,
        "store_items_per_transaction": round(items / transactions, 1) if transactions else 0.0,
    }


def _bound(below: dict[float, float], turns: float, q: float) -> float | None:
    """The smallest histogram bucket bound (ms) under which at least ``q`` of the turns fell."""
    for le, count in sorted(below.items()):
        if turns and count / turns >= q:
            return le * 1000
    return None
