"""``appliance privacy retention [--dry-run]``: erase what ``privacy.retention_days`` says is too old.

A running server does the same once at start and then every hour; this runs it once, now.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime

from appliance.commands._context import node
from appliance.desk.privacy import Privacy


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("privacy", help="privacy operations (retention)")
    actions = parser.add_subparsers(dest="privacy_command", metavar="ACTION", required=True)
    retention = actions.add_parser("retention", help="erase conversations idle longer than privacy.retention_days,"
                                   " and old uploads and left messages nothing shows any more")
    retention.add_argument("--dry-run", action="store_true", help="count what would be erased; erase nothing")
    retention.set_defaults(run=run_retention)


def run_retention(args: argparse.Namespace) -> int:
    with node(args) as (config, _, store):
        days = config.privacy.retention_days
        if days <= 0:
            print("retention is off (privacy.retention_days = 0): nothing is erased")
            return 0
        report = asyncio.run(Privacy(store, retention_days=days).retention(dry_run=args.dry_run, actor="cli",
                                                                             ip="local"))
    cutoff = datetime.datetime.fromtimestamp(report.cutoff_ms / 1000, datetime.UTC).strftime("%Y-%m-%d %H:%M")
    verb = "would erase" if report.dry_run else "erased"
    print(f"{verb} {report.erased.conversations} conversations idle since before {cutoff} UTC"
          f" ({days} days): {report.erased.describe()}")
    return 0
