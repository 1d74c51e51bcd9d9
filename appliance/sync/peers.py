"""Paired peers: the nodes this one exchanges events with, kept in the local ``sync_peers`` table.

Pairing is this node's own trust decision, so it is not replicated (the audit record of it is).
A peer is known by its node id; the address is only where to dial it, and an authenticated
peer may connect from any address (behind NAT or a relay).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from appliance.core import events as ev
from appliance.core.errors import InputError, NotFound
from appliance.store import Connection, WriteTxn


class Peer(msgspec.Struct, frozen=True, kw_only=True):
    node_id: str
    name: str
    address: str  # host:port of its sync listener; empty: it dials us
    added_ms: int


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a pair; InputError naming what is wrong."""
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"{address!r} is not HOST:PORT (the peer's [sync] host and port, e.g. 10.0.0.2:7443)")
    return host, int(port)


def list_peers(conn: Connection) -> list[Peer]:
    rows = conn.execute("SELECT node_id, name, address, added_ms FROM sync_peers ORDER BY added_ms").fetchall()
    return [Peer(node_id=r[0], name=r[1], address=r[2], added_ms=r[3]) for r in rows]


def add_peer(node_id: str, address: str, name: str, *, own_id: str, actor: str,
             ip: str = "local") -> Callable[[WriteTxn], tuple[Peer, bool]]:
    """A write: pair with ``node_id`` (or change its address/name); True when it is new."""
    if node_id == own_id:
        raise InputError("that is this node's own id: pair with the other node's id (`appliance node id` there)")
    if address:
        parse_address(address)

    def work(txn: WriteTxn) -> tuple[Peer, bool]:
        existing = txn.conn.execute("SELECT added_ms FROM sync_peers WHERE node_id = ?", (node_id,)).fetchone()
        peer = Peer(node_id=node_id, name=name, address=address,
                    added_ms=existing[0] if existing else time.time_ns() // 1_000_000)
        txn.conn.execute("INSERT OR REPLACE INTO sync_peers (node_id, name, address, added_ms) VALUES (?, ?, ?, ?)",
                         (peer.node_id, peer.name, peer.address, peer.added_ms))
        txn.append(ev.AuditRecorded(actor=actor, action="pair.add" if existing is None else "pair.change",
                                    target=node_id, detail=f"{name} {address}".strip(), ip=ip))
        return peer, existing is None

    return work


def remove_peer(node_id: str, *, actor: str, ip: str = "local") -> Callable[[WriteTxn], Peer]:
    def work(txn: WriteTxn) -> Peer:
        found = [p for p in list_peers(txn.conn) if p.node_id == node_id or p.name == node_id]
        if not found:
            raise NotFound(f"no paired node {node_id!r} (see `appliance pair list`)")
        peer = found[0]
        txn.conn.execute("DELETE FROM sync_peers WHERE node_id = ?", (peer.node_id,))
        txn.append(ev.AuditRecorded(actor=actor, action="pair.remove", target=peer.node_id, detail=peer.name, ip=ip))
        return peer

    return work
