"""``appliance node id``, ``appliance pair add|list|remove`` and ``appliance sync status``.

Pairing is mutual: each node adds the other's id (`appliance node id` there) and where to dial
it. A running server picks a pairing change up within two seconds. ``sync status`` reads the
status file the server writes every second together with the database; with no server
running it says so and shows the pairings and backlogs alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

from appliance.commands._context import load_config, node
from appliance.core.errors import InputError
from appliance.core.hlc import physical_ms
from appliance.node import NodeIdentity
from appliance.sync.identity import human_form, parse_node_id
from appliance.sync.peers import add_peer, list_peers, remove_peer
from appliance.sync.status import STALE_AFTER_S, StatusFile, lag
from appliance.sync.wire import from_marks


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    node_parser = subparsers.add_parser("node", help="this node's identity")
    node_actions = node_parser.add_subparsers(dest="node_command", metavar="ACTION", required=True)
    show = node_actions.add_parser("id", help="print this node's id (the SHA-256 of its certificate)")
    show.add_argument("--human", action="store_true", help="the checksummed 8-group form instead of hex")
    show.set_defaults(run=run_node_id)

    pair = subparsers.add_parser("pair", help="pair this node with nodes at other sites (both sides must add)")
    actions = pair.add_subparsers(dest="pair_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="pair with a node: its id and where its sync port is")
    add.add_argument("node_id", metavar="NODE_ID", help="the other node's `appliance node id` (hex or --human form)")
    add.add_argument("address", metavar="HOST:PORT", nargs="?", default="",
                     help="its [sync] address; leave out when only it can reach us (it dials, e.g. from behind NAT)")
    add.add_argument("--name", default="", help="a name for it in status and logs (default: its first 12 hex digits)")
    add.set_defaults(run=run_pair_add)
    actions.add_parser("list", help="paired nodes").set_defaults(run=run_pair_list)
    remove = actions.add_parser("remove", help="stop exchanging events with a node")
    remove.add_argument("node_id", metavar="NODE_ID_OR_NAME")
    remove.set_defaults(run=run_pair_remove)

    sync = subparsers.add_parser("sync", help="replication with paired nodes")
    sync_actions = sync.add_subparsers(dest="sync_command", metavar="ACTION", required=True)
    status = sync_actions.add_parser("status", help="each peer: connected, lag, backlog, last error, rates")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(run=run_sync_status)
    conflicts = sync_actions.add_parser("conflicts", help="changes that lost last-writer-wins, and colliding events")
    conflicts.add_argument("--json", action="store_true", help="one JSON object per line")
    conflicts.add_argument("--limit", type=int, default=100, help="newest N of each (default 100)")
    conflicts.set_defaults(run=run_sync_conflicts)


def run_node_id(args: argparse.Namespace) -> int:
    identity = NodeIdentity.load(load_config(args).data_dir)
    print(human_form(identity.node_id) if args.human else identity.node_id)
    return 0


def run_pair_add(args: argparse.Namespace) -> int:
    node_id = parse_node_id(args.node_id)
    name = args.name.strip() or node_id[:12]
    with node(args) as (_, identity, store):
        peer, new = store.write_sync(
            add_peer(node_id, args.address.strip(), name, own_id=identity.node_id, actor="cli"))
    where = f" at {peer.address}" if peer.address else " (it dials this node)"
    print(f"{'paired with' if new else 'updated'} {peer.name} ({node_id[:16]}…){where}")
    print(f"on {peer.name}, pair back: appliance pair add {identity.node_id} <this node's sync HOST:PORT>")
    print("accounts replicate: an account name is one account on every paired node")
    return 0


def run_pair_list(args: argparse.Namespace) -> int:
    with node(args) as (_, _, store):
        peers = store.read_sync(list_peers)
    if not peers:
        print("no paired nodes (add one with `appliance pair add NODE_ID HOST:PORT`)")
        return 0
    print(f"{'NAME':<20} {'ADDRESS':<24} NODE ID")
    for p in peers:
        print(f"{p.name:<20} {p.address or '(dials us)':<24} {p.node_id}")
    return 0


def run_pair_remove(args: argparse.Namespace) -> int:
    wanted = args.node_id.strip()
    with contextlib.suppress(InputError):  # else a name
        wanted = parse_node_id(wanted)
    with node(args) as (_, _, store):
        peer = store.write_sync(remove_peer(wanted, actor="cli"))
    print(f"unpaired {peer.name} ({peer.node_id[:16]}…)")
    return 0


def run_sync_status(args: argparse.Namespace) -> int:
    with node(args) as (config, identity, store):
        peers = store.read_sync(list_peers)
        state = StatusFile(config.data_dir).read()
        fresh = bool(state and state.get("running") and time.time() - state["updated_ms"] / 1000 < STALE_AFTER_S)
        live = {p["node_id"]: p for p in (state or {}).get("peers", [])} if fresh else {}
        now_ms = time.time_ns() // 1_000_000
        rows = []
        for peer in peers:
            seen = live.get(peer.node_id, {})
            peer_marks = from_marks([tuple(m) for m in seen.get("peer_marks", [])])
            origins = store.read_sync(lambda conn, marks=peer_marks: lag(conn, marks, now_ms))
            rows.append({
                "node_id": peer.node_id, "name": peer.name, "address": peer.address,
                "connected": bool(seen.get("connected")), "remote": seen.get("remote", ""),
                "backlog": int(sum(o["backlog"] for o in origins.values())) if seen.get("peer_marks") else None,
                "lag_s": max((o["lag_s"] for o in origins.values()), default=0.0) if seen.get("peer_marks") else None,
                "origins": origins if seen.get("peer_marks") else {},
                "last_error": seen.get("last_error", ""), "notice": seen.get("notice", ""),
                **{k: seen.get(k, 0) for k in ("events_in", "events_out", "bytes_in", "bytes_out", "collisions",
                                                "events_in_per_s", "events_out_per_s", "bytes_in_per_s",
                                                "bytes_out_per_s")},
            })
    report = {
        "node_id": identity.node_id, "name": config.node.name, "server_running": fresh,
        "listening": (state or {}).get("listening", "") if fresh else "",
        "listen_error": (state or {}).get("listen_error", "") if fresh else "",
        "refused": (state or {}).get("refused", {}) if fresh else {}, "peers": rows,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"node {config.node.name} {identity.node_id}")
    if not fresh:
        print("server: not running (no fresh sync-status.json): connections and rates unknown")
    else:
        print(f"listening: udp {report['listening'] or '- (' + (report['listen_error'] or 'port 0') + ')'}")
        if report["refused"]:
            print("refused: " + ", ".join(f"{k} {v}" for k, v in sorted(report["refused"].items())))
    if not rows:
        print("no paired nodes")
    for r in rows:
        state_text = "connected" if r["connected"] else "not connected"
        backlog = "?" if r["backlog"] is None else f"{r['backlog']} events"
        lag_text = "?" if r["lag_s"] is None else f"{r['lag_s']:.1f}s"
        print(f"{r['name']:<20} {state_text:<14} backlog {backlog:<12} lag {lag_text:<8}"
              f" in {r['events_in_per_s']:.0f}/s out {r['events_out_per_s']:.0f}/s"
              f" total in {r['events_in']} out {r['events_out']}  {r['address'] or '(dials us)'}")
        if r["last_error"] and not r["connected"]:
            print(f"  last error: {r['last_error']}")
        if r["notice"]:
            print(f"  notice: {r['notice']}")
        if r["collisions"]:
            print(f"  collisions: {r['collisions']} events arrived under a number holding another (kept in"
                  " sync_collisions)")
    return 0


def run_sync_conflicts(args: argparse.Namespace) -> int:
    """Updates made at two sites to the same thing: the one that lost (kept in the log) and what
    won; and events that arrived under a number already holding another (a restore, kept aside)."""
    with node(args) as (_, _, store):
        losers = store.read_sync(lambda c: c.execute(
            "SELECT kind, key, origin, seq, hlc, winner_origin, winner_hlc FROM lww_losers ORDER BY hlc DESC LIMIT ?",
            (args.limit,)).fetchall())
        collisions = store.read_sync(lambda c: c.execute(
            "SELECT origin, seq, hlc, type, source, detected_ms FROM sync_collisions ORDER BY detected_ms DESC"
            " LIMIT ?", (args.limit,)).fetchall())
        names = {p.node_id: p.name for p in store.read_sync(list_peers)} | {store.origin: "this node"}
    who = lambda node_id: names.get(node_id, node_id[:12])  # noqa: E731
    when = lambda hlc: time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(physical_ms(hlc) / 1000))  # noqa: E731
    if args.json:
        for kind, key, origin, seq, hlc, winner_origin, winner_hlc in losers:
            print(json.dumps({"lost": {"kind": kind, "key": key, "origin": origin, "seq": seq, "at": when(hlc)},
                              "won": {"origin": winner_origin, "at": when(winner_hlc)}}, ensure_ascii=False))
        for origin, seq, hlc, kind, source, _ in collisions:
            print(json.dumps({"collision": {"origin": origin, "seq": seq, "type": kind, "at": when(hlc),
                                            "from": source}}, ensure_ascii=False))
        return 0
    if not losers and not collisions:
        print("no conflicts: no change has lost last-writer-wins here, and no event collided")
        return 0
    for kind, key, origin, seq, hlc, winner_origin, winner_hlc in losers:
        print(f"{kind} {key}: the change from {who(origin)} at {when(hlc)} UTC (event #{seq}) lost to"
              f" {who(winner_origin)}'s at {when(winner_hlc)} UTC")
    for origin, seq, hlc, kind, source, _ in collisions:
        print(f"collision: {who(origin)} #{seq} ({kind}, {when(hlc)} UTC) from {who(source)} was kept aside:"
              " this node holds another event under that number")
    return 0
