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
    actions.add_parser("verify", help="check the hash chain; exit 1 if it was tampered with").set_defaults(
        run=run_verify)


def run_list(args: argparse.Namespace) -> int:
    with node(args) as (_, _, store):
        records = store.read_sync(lambda c: audit.recent(c, args.limit))
    for r in records:
        when = datetime.datetime.fromtimestamp(r.at_ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{when}  {r.actor:<20} {r.action:<22} {r.target} {r.detail}".rstrip())
    return 0


def run_verify(args: argparse.Namespace) -> int:
    with node(args) as (_, _, store):
        result = store.read_sync(audit.verify)
    for problem in result.problems:
        print(f"TAMPERED {problem}")
    print(f"{result.records} audit records, chain {'intact' if result.ok else 'BROKEN'}")
    return 0 if result.ok else 1
