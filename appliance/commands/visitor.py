"""``appliance visitor export|erase``: everything stored about one visitor, out or gone.

Find a visitor's id in the console's conversation view (the visitor panel; the desk API's
``visitor.visitor_id``), or name one of their conversations with ``--conversation``. Both
commands are audited (actor ``cli``, from ``local``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from appliance.commands._context import node
from appliance.core.errors import InputError
from appliance.desk.privacy import Privacy


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("visitor", help="export or erase everything stored about a visitor")
    actions = parser.add_subparsers(dest="visitor_command", metavar="ACTION", required=True)
    export = actions.add_parser("export", help="write the visitor's data as JSON to standard output")
    _target(export)
    export.set_defaults(run=run_export)
    erase = actions.add_parser("erase", help="erase the visitor's conversations, messages, traces, tickets and"
                               " uploads here and, by tombstone, on paired nodes")
    _target(erase)
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.set_defaults(run=run_erase)


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("visitor_id", nargs="?", help="the visitor's id (vis_...)")
    parser.add_argument("--conversation", metavar="ID", help="the visitor who wrote this conversation")


async def _visitor(privacy: Privacy, args: argparse.Namespace) -> str:
    if bool(args.visitor_id) == bool(args.conversation):
        raise InputError("name a VISITOR_ID or --conversation ID (one of them)")
    return str(args.visitor_id) if args.visitor_id else await privacy.visitor_of(args.conversation)


def run_export(args: argparse.Namespace) -> int:
    with node(args) as (config, _, store):
        privacy = Privacy(store, retention_days=config.privacy.retention_days)

        async def export() -> None:
            visitor_id = await _visitor(privacy, args)
            out = sys.stdout.buffer
            async for piece in await privacy.export(visitor_id, actor="cli", ip="local"):
                out.write(piece)
            out.flush()

        asyncio.run(export())
    return 0


def run_erase(args: argparse.Namespace) -> int:
    with node(args) as (config, _, store):
        privacy = Privacy(store, retention_days=config.privacy.retention_days)

        async def erase() -> int:
            visitor_id = await _visitor(privacy, args)
            if not args.yes:
                if not sys.stdin.isatty():
                    raise InputError("erasing cannot be undone: add --yes to confirm")
                answer = input(f"erase everything stored about visitor {visitor_id}? type yes: ")
                if answer.strip().lower() != "yes":
                    print("nothing erased")
                    return 1
            result = await privacy.erase_visitor(visitor_id, actor="cli", ip="local")
            if result.already_erased:
                print(f"visitor {visitor_id} was already erased; nothing left to erase")
            else:
                print(f"erased visitor {visitor_id}: {result.erased.describe()}")
            return 0

        return asyncio.run(erase())
