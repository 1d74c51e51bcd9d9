"""The turns' model attempts over a window, read from the stored traces (``core/arm_history.py``
turns them into per-arm series). Decodes only the trace fields it needs; the window is found
through the ``traces_hlc`` index."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec

from appliance.core.arm_history import TurnSample
from appliance.core.hlc import physical_ms
from appliance.core.types import Attempt
from appliance.store.db import Connection

_HLC_SHIFT = 16  # core/hlc.py: 48 bits of milliseconds above 16 bits of counter


class _TraceModels(msgspec.Struct):
    route: str = ""
    arm: str = ""
    attempts: list[Attempt] = msgspec.field(default_factory=list)


_decoder = msgspec.msgpack.Decoder(_TraceModels)


def turn_samples(conn: Connection, since_ms: int, until_ms: int) -> Iterator[TurnSample]:
    """Every traced turn in [since_ms, until_ms) that called a model, with its reply's rating."""
    rows = conn.execute(
        "SELECT t.hlc, t.body, f.rating FROM traces t LEFT JOIN feedback f ON f.message_id = t.message_id"
        " AND t.message_id != '' WHERE t.hlc >= ? AND t.hlc < ? ORDER BY t.hlc",
        (since_ms << _HLC_SHIFT, until_ms << _HLC_SHIFT))
    for hlc, body, rating in rows:
        found = _decoder.decode(body)
        if found.attempts:
            yield TurnSample(at_ms=physical_ms(hlc), attempts=found.attempts, route=found.route, arm=found.arm,
                             rating=rating)
