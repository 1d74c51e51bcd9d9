"""What replication keeps for review: last-writer-wins updates that lost, and colliding events.

Both tables are local to the node (never replicated) and only ever grow by an insert that
ignores repeats, so recording the same loser twice (an event delivered by two peers) is harmless.
"""

from __future__ import annotations

import time

from appliance.core import events as ev
from appliance.store.db import Connection


def record_loser(conn: Connection, kind: str, key: str, loser: ev.Event, winner: tuple[int, str]) -> None:
    """``loser`` arrived after a newer ``(hlc, origin)`` update of the same ``kind``/``key``: it never
    took effect here. Its payload stays in the event log under ``(origin, seq)``."""
    conn.execute(
        "INSERT OR IGNORE INTO lww_losers (kind, key, origin, seq, hlc, winner_origin, winner_hlc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (kind, key, loser.origin, loser.seq, loser.hlc, winner[1], winner[0]),
    )


def record_collision(conn: Connection, event: ev.Event, source: str) -> None:
    """``event`` came from ``source`` under an ``(origin, seq)`` this node holds with another hlc:
    its origin wrote two different events with one number (a restore from an old backup)."""
    conn.execute(
        "INSERT OR IGNORE INTO sync_collisions (origin, seq, hlc, type, payload, source, detected_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event.origin, event.seq, event.hlc, event.type, event.payload, source, time.time_ns() // 1_000_000),
    )
