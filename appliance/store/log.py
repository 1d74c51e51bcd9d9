"""Reading the event log by origin: what replication compares and ships.

Every origin's events are numbered 1, 2, 3… by the node that wrote them; after a restore from
an older backup the node continues in a new epoch (``seq = epoch << 32 | n``), so no number is
used twice. A *stream* is one origin's events of one epoch. A node holds each stream without
gaps up to its high-water mark, because a peer ships a stream in order and the writer applies
it in order, so ``{(origin, epoch): max(seq)}`` says exactly what a node has.
"""

from __future__ import annotations

from appliance.core import events as ev
from appliance.store.db import Connection

EPOCH_BITS = 32  # seq = epoch << 32 | number within the epoch


def epoch_of(seq: int) -> int:
    return seq >> EPOCH_BITS


def origins(conn: Connection) -> list[str]:
    """The distinct origins in the log, one index probe each (no scan of the log)."""
    rows = conn.execute(
        "WITH RECURSIVE o(origin) AS (SELECT min(origin) FROM events"
        " UNION ALL SELECT (SELECT min(origin) FROM events WHERE origin > o.origin) FROM o WHERE o.origin IS NOT NULL)"
        " SELECT origin FROM o WHERE origin IS NOT NULL"
    ).fetchall()
    return [row[0] for row in rows]


Stream = tuple[str, int]  # (origin, epoch): numbered without gaps, shipped in order


def _epoch_end(epoch: int) -> int:
    return (epoch + 1) << EPOCH_BITS


def highest(conn: Connection) -> dict[str, int]:
    """``{origin: highest seq held}``."""
    return {o: conn.execute("SELECT max(seq) FROM events WHERE origin = ?", (o,)).fetchone()[0] for o in origins(conn)}


def marks(conn: Connection) -> dict[Stream, int]:
    """``{(origin, epoch): highest seq held}``: what replication compares. Each epoch is a stream
    of its own, so events lost below a new epoch (a restore from backup) can still come back."""
    found: dict[Stream, int] = {}
    for origin in origins(conn):
        seq = conn.execute("SELECT min(seq) FROM events WHERE origin = ?", (origin,)).fetchone()[0]
        while seq is not None:
            epoch = epoch_of(seq)
            found[(origin, epoch)] = conn.execute(
                "SELECT max(seq) FROM events WHERE origin = ? AND seq < ?", (origin, _epoch_end(epoch))).fetchone()[0]
            seq = conn.execute("SELECT min(seq) FROM events WHERE origin = ? AND seq >= ?",
                               (origin, _epoch_end(epoch))).fetchone()[0]
    return found


def newest_hlc(conn: Connection) -> int:
    """The newest hlc in the log: each origin's last event is its newest."""
    newest = 0
    for origin in origins(conn):
        row = conn.execute("SELECT hlc FROM events WHERE origin = ? ORDER BY seq DESC LIMIT 1", (origin,)).fetchone()
        newest = max(newest, row[0])
    return newest


def _above(stream: Stream, seq: int) -> tuple[str, int, int]:
    origin, epoch = stream
    return origin, max(seq, epoch << EPOCH_BITS), _epoch_end(epoch)


def events_after(conn: Connection, stream: Stream, seq: int, limit: int) -> list[ev.Event]:
    rows = conn.execute(
        "SELECT origin, seq, hlc, type, payload FROM events WHERE origin = ? AND seq > ? AND seq < ?"
        " ORDER BY seq LIMIT ?", (*_above(stream, seq), limit),
    ).fetchall()
    return [ev.Event(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]


def first_hlc_after(conn: Connection, stream: Stream, seq: int) -> int | None:
    """The hlc of the oldest event of ``stream`` above ``seq``: how far behind a peer is."""
    row = conn.execute("SELECT hlc FROM events WHERE origin = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT 1",
                       _above(stream, seq)).fetchone()
    return None if row is None else int(row[0])


def count_after(conn: Connection, stream: Stream, seq: int) -> int:
    return int(conn.execute("SELECT count(*) FROM events WHERE origin = ? AND seq > ? AND seq < ?",
                            _above(stream, seq)).fetchone()[0])


def begin_epoch_above(conn: Connection, origin: str, seq: int) -> int | None:
    """If this node's own log ends below ``seq``, though its events up to ``seq`` exist elsewhere
    (a peer holds them, or the audit head outside the database names one), the database was
    restored from an older backup: new own events start a new epoch above ``seq``, so they never
    reuse a number the lost events had. Returns the new floor, or None when nothing changed."""
    own = conn.execute("SELECT max(seq) FROM events WHERE origin = ?", (origin,)).fetchone()[0] or 0
    if own >= seq:
        return None
    floor = ((epoch_of(seq) + 1) << EPOCH_BITS) + 1  # numbers within an epoch start at 1
    current = conn.execute("SELECT value FROM node_state WHERE key = 'seq_floor'").fetchone()
    if current is not None and int(current[0]) >= floor:
        return None
    conn.execute("INSERT OR REPLACE INTO node_state (key, value) VALUES ('seq_floor', ?)", (floor,))
    return floor
