"""Where the milliseconds go: per-stage timings from the appliance's own decision traces.

Traces are read straight from the node's SQLite file (read-only, in WAL mode, while the server
runs): ``traces.body`` is the msgpack of :class:`appliance.core.types.Trace`. A scenario's traces
are those appended between two row ids taken around its measured run, sampled evenly.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from pathlib import Path

import msgspec

from appliance.core.types import Trace
from appliance.store.db import connect

STAGES = ("cache", "intent", "retrieval", "llm", "local_model", "total")
_decode = msgspec.msgpack.Decoder(Trace).decode
_VARIABLE = re.compile(r"\b[a-z]{2,4}_[0-9a-f]{6,}\b|\d+(\.\d+)?")


def last_rowid(db: Path) -> int:
    conn = connect(db, readonly=True)
    try:
        row = conn.execute("SELECT coalesce(max(rowid), 0) FROM traces").fetchone()
        return int(row[0])
    finally:
        conn.close()


def stage_summary(db: Path, after: int, until: int, sample: int = 2000) -> dict[str, object]:
    """Median of each ``timings_ms`` key (and how many traces had it), reply sources and cache levels."""
    step = max(1, (until - after) // sample)
    conn = connect(db, readonly=True)
    try:
        rows = conn.execute("SELECT body FROM traces WHERE rowid > ? AND rowid <= ? AND (rowid - ?) % ? = 0",
                            (after, until, after, step)).fetchall()
    finally:
        conn.close()
    traces = [_decode(row[0]) for row in rows]
    timings: dict[str, list[float]] = {}
    for trace in traces:
        for stage, ms in trace.timings_ms.items():
            timings.setdefault(stage, []).append(ms)
    ordered = [s for s in STAGES if s in timings] + sorted(set(timings) - set(STAGES))
    return {
        "traces": until - after,
        "sampled": len(traces),
        "median_ms": {s: round(statistics.median(timings[s]), 2) for s in ordered},
        "mean_ms": {s: round(statistics.fmean(timings[s]), 2) for s in ordered},
        "p99_ms": {s: round(_quantile(timings[s], 0.99), 2) for s in ordered},
        "with_stage": {s: len(timings[s]) for s in ordered},
        "sources": dict(Counter(t.source for t in traces).most_common()),
        "cache": dict(Counter(t.cache for t in traces).most_common()),
        "fallbacks": dict(Counter(_fallback_kind(f) for t in traces for f in t.fallbacks).most_common(5)),
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fallback_kind(reason: str) -> str:
    """A fallback reason without its variable part (numbers, chunk ids), so reasons can be counted."""
    general = _VARIABLE.sub("…", reason.split(":")[0].split(" (")[0])
    return general[:60]
