"""``appliance webhook add|list|remove|deliveries``: signed webhooks and their delivery log.

The secret is shown once, when the receiver is added (given with ``--secret``, read from
standard input with ``--secret-stdin``, or generated); adding and removing are audited (actor
``cli``, from ``local``). See the README, "Webhooks".
"""

from __future__ import annotations

import argparse
import sys

import msgspec

from appliance.commands._context import node
from appliance.commands._live import apply_live
from appliance.core import webhooks as wh
from appliance.core.errors import InputError
from appliance.store import Connection, webhooks


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("webhook", help="signed webhooks: receivers and their delivery log")
    actions = parser.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a receiver; prints its id and (once) its secret")
    add.add_argument("url", metavar="URL", help="http:// or https:// address the events are POSTed to")
    add.add_argument("--events", required=True, metavar="E1,E2",
                     help=f"comma-separated events: {', '.join(wh.EVENTS)}")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument("--secret", help="the signing secret (at least 16 characters; stays in shell history)")
    secret.add_argument("--secret-stdin", action="store_true", help="read the signing secret from standard input")
    add.set_defaults(run=run_add)
    listing = actions.add_parser("list", help="receivers with their events and delivery counts")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=run_list)
    remove = actions.add_parser("remove", help="remove a receiver by id, or by URL; its pending deliveries stop")
    remove.add_argument("webhook", metavar="ID_OR_URL")
    remove.set_defaults(run=run_remove)
    log = actions.add_parser("deliveries", help="the delivery log, newest first, with every attempt")
    log.add_argument("webhook", metavar="ID_OR_URL", nargs="?", help="only this receiver's deliveries")
    log.add_argument("--limit", type=int, default=20, help="most deliveries shown (default 20)")
    log.add_argument("--json", action="store_true", help="print JSON")
    log.set_defaults(run=run_deliveries)


def run_add(args: argparse.Namespace) -> int:
    if args.secret_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
        generated = False
    else:
        secret, generated = (args.secret, False) if args.secret is not None else (wh.new_secret(), True)
    work = webhooks.add(args.url, args.events.split(","), secret, actor="cli", ip="local")
    with node(args) as (config, _, store):
        created = store.write_sync(work)
    hook = created.webhook
    print(f"added {hook.id} {hook.url} ({', '.join(hook.events)})")
    if generated:
        print(f"secret (shown once): {created.secret}")
    apply_live(config, "webhooks")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with node(args) as (_, _, store):
        found = store.read_sync(webhooks.webhooks)
    if args.json:
        print(msgspec.json.encode(found).decode())
        return 0
    print(f"{'ID':<27} {'PENDING':>7} {'DELIVERED':>9} {'FAILED':>6}  URL  EVENTS")
    for w in found:
        print(f"{w.id:<27} {w.pending:>7} {w.delivered:>9} {w.failed:>6}  {w.url}  {','.join(w.events)}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with node(args) as (config, _, store):
        hook = store.write_sync(webhooks.remove(args.webhook, actor="cli", ip="local"))
    print(f"removed {hook.id} {hook.url}")
    apply_live(config, "webhooks")
    return 0


def run_deliveries(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise InputError("--limit must be between 1 and 1000")
    with node(args) as (_, _, store):
        def read(conn: Connection) -> list[webhooks.Delivery]:
            hook_id = webhooks.find(conn, args.webhook).id if args.webhook else None
            return webhooks.deliveries(conn, hook_id, args.limit)

        found = store.read_sync(read)
    if args.json:
        print(msgspec.json.encode(found).decode())
        return 0
    print(f"{'DELIVERY':<28} {'EVENT':<28} {'STATUS':<10} {'ATTEMPTS':>8} {'LAST':>4}  CREATED  LAST ERROR")
    for d in found:
        print(f"{d.id:<28} {d.event:<28} {d.status:<10} {d.attempts:>8} {d.last_status or '-':>4}  {d.created_at}"
              f"  {d.last_error}")
    return 0
