"""``appliance token create|list|revoke``: bearer tokens for the admin/agent API.

A token is printed once and stored only as its SHA-256. Creating and revoking one is audited
(actor ``cli``, from ``local``); so is its use over HTTP (see ``SignIn.token_used``).
"""

from __future__ import annotations

import argparse

from appliance.commands._context import node
from appliance.commands._live import apply_live
from appliance.core import events as ev
from appliance.core import permissions
from appliance.core.errors import Conflict, InputError, NotFound
from appliance.core.tokens import hash_bearer_token, new_bearer_token, new_id
from appliance.store import WriteTxn, accounts


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
    name = args.name.strip()
    if not name:
        raise InputError("--name must not be empty")
    token = new_bearer_token()
    token_id = new_id("tok")
    with node(args) as (config, _, store):
        store.append_sync(
            ev.TokenIssued(token_id=token_id, name=name, role=args.role, token_hash=hash_bearer_token(token)),
            ev.AuditRecorded(actor="cli", action="token.create", target=name, detail=token_id, ip="local",
                             after=args.role),
        )
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
    wanted = args.token.strip()

    def work(txn: WriteTxn) -> accounts.TokenRow:
        active = [t for t in accounts.tokens(txn.conn) if not t.revoked]
        chosen = [t for t in active if t.token_id == wanted] or [t for t in active if t.name == wanted]
        if not chosen:
            raise NotFound(f"no active token with id or name {wanted!r} (see `appliance token list`)")
        if len(chosen) > 1:
            ids = ", ".join(t.token_id for t in chosen)
            raise Conflict(f"{len(chosen)} active tokens are named {wanted!r} ({ids}); revoke one by id")
        token = chosen[0]
        txn.append(ev.TokenRevoked(token_id=token.token_id))
        txn.append(ev.AuditRecorded(actor="cli", action="token.revoke", target=token.name, detail=token.token_id,
                                    ip="local", before="active", after="revoked"))
        return token

    with node(args) as (config, _, store):
        token = store.write_sync(work)
    print(f"revoked {token.token_id} ({token.name}, {token.role})")
    apply_live(config, "accounts")
    return 0
