"""``appliance token create``: a bearer token for the admin/agent API."""

from __future__ import annotations

import argparse

from appliance.commands._context import node
from appliance.core import events as ev
from appliance.core.errors import InputError
from appliance.core.tokens import hash_bearer_token, new_bearer_token, new_id


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("token", help="manage API bearer tokens")
    actions = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a bearer token and print it once")
    create.add_argument("--role", choices=["admin", "supervisor", "agent"], required=True)
    create.add_argument("--name", required=True, help="who or what the token is for")
    create.set_defaults(run=run_create)


def run_create(args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not name:
        raise InputError("--name must not be empty")
    token = new_bearer_token()
    with node(args) as (_, _, store):
        store.append_sync(
            ev.TokenIssued(token_id=new_id("tok"), name=name, role=args.role, token_hash=hash_bearer_token(token)),
            ev.AuditRecorded(actor="cli", action="token.create", target=name, detail=args.role),
        )
    print(token)
    return 0
