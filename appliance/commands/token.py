"""``appliance token create|list|revoke``: bearer tokens for the admin/agent API.

A token is printed once and stored only as its SHA-256. Creating and revoking one is audited
(actor ``cli``, from ``local``); so is its use over HTTP (see ``SignIn.token_used``). The checks
and writes are ``appliance/desk/team.py``, shared with the console's Users page.
"""

from __future__ import annotations

import argparse

from appliance.commands._context import node
from appliance.commands._live import apply_live
from appliance.core import permissions
from appliance.desk import team
from appliance.store import accounts

ACTOR, FROM = "cli", "local"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("token", help="manage API bearer tokens")
    actions = parser.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a bearer token and print it once")
    create.add_argument("--role", choices=permissions.TOKEN_ROLES, required=True)
    create.add_argument("--name", required=True, help="who or what the token is for")
    create.set_defaults(run=run_create)
    actions.add_parser("list", help="tokens with id, name, role and state").set_defaults(run=run_list)
    revoke = actions.add_parser("revoke", help="revoke a token by id, or by name when one active token has it")
    revoke.add_argument("token", metavar="ID_OR_NAME")
    revoke.set_defaults(run=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    token, work = team.issue_token(args.name, args.role, actor=ACTOR, ip=FROM)
    with node(args) as (config, _, store):
        store.write_sync(work)
    print(token)
    apply_live(config, "accounts")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with node(args) as (_, _, store):
        found = store.read_sync(accounts.tokens)
    print(f"{'ID':<28} {'NAME':<24} {'ROLE':<11} STATE")
    for t in found:
        print(f"{t.token_id:<28} {t.name:<24} {t.role:<11} {'revoked' if t.revoked else 'active'}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    with node(args) as (config, _, store):
        token = store.write_sync(team.revoke_token(args.token, actor=ACTOR, ip=FROM))
    print(f"revoked {token.token_id} ({token.name}, {token.role})")
    apply_live(config, "accounts")
    return 0
