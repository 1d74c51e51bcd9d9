"""``appliance audit list|verify``: the admin audit log and its hash chain."""

from __future__ import annotations

import argparse
import datetime

from appliance.commands._context import node
from appliance.store import audit


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("audit", help="read and verify the audit log")
    actions = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="recent audit records, newest first")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=run_list)
    verify = actions.add_parser("verify", help="check the hash chains and the signed head; exit 1 naming the"
                                " first broken record")
    verify.set_defaults(run=run_verify)


def run_list(args: argparse.Namespace) -> int:
    with node(args) as (_, _, store):
        records = store.read_sync(lambda c: audit.recent(c, args.limit))
    for r in records:
        when = datetime.datetime.fromtimestamp(r.at_ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        change = f" [{r.before} -> {r.after}]" if r.before or r.after else ""
        print(f"{when}  {r.ip or '-':<15} {r.actor:<20} {r.action:<22} {r.target} {r.detail}{change}".rstrip())
    return 0


def run_verify(args: argparse.Namespace) -> int:
    """Print the first broken record (origin and sequence number) and exit 1, or the count and 0."""
    with node(args) as (_, _, store):
        result = store.read_sync(lambda c: audit.verify(c, store.audit_head))
    if result.problems:
        print(f"TAMPERED {result.problems[0]}")
        if len(result.problems) > 1:
            print(f"({len(result.problems) - 1} more problems after it)")
        print(f"{result.records} audit records, chain BROKEN")
        return 1
    anchor = f"; signed head at #{result.head_seq}" if result.head_seq else ""
    print(f"{result.records} audit records, chain intact{anchor}")
    return 0
