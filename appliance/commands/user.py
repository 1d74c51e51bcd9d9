"""``appliance user add|list|passwd|disable|enable``: console accounts.

A password is never taken from the command line (it would land in the shell history): it is
generated and printed once, or read from standard input with ``--password-stdin``. Changing a
password or disabling an account ends that account's sessions at once, and the server running on
this node closes its open consoles before the command returns. Every change is audited
(actor ``cli``, from ``local``) with the account before and after it (never the password hash).
The checks and writes are ``appliance/desk/team.py``, shared with the console's Users page.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import msgspec

from appliance.commands._context import node
from appliance.commands._live import apply_live
from appliance.core import permissions
from appliance.core.tokens import hash_password
from appliance.desk import team
from appliance.store import accounts

ACTOR, FROM = "cli", "local"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("user", help="manage console accounts (agents, supervisors, admins)")
    actions = parser.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create an account; prints a generated password once")
    add.add_argument("name")
    add.add_argument("--role", choices=permissions.ACCOUNT_ROLES, required=True)
    add.add_argument("--display-name", default="", help="name shown to visitors (default: the account name)")
    add.add_argument("--capacity", type=int, default=None,
                     help="conversations handled at once (default: desk.default_capacity)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=run_add)
    listing = actions.add_parser("list", help="accounts with role, capacity and state")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=run_list)
    passwd = actions.add_parser("passwd", help="set a new password (ends the account's sessions)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    passwd.set_defaults(run=run_passwd)
    for verb, disabled in (("disable", True), ("enable", False)):
        sub = actions.add_parser(verb, help=f"{verb} an account" + (" (ends its sessions)" if disabled else ""))
        sub.add_argument("name")
        sub.set_defaults(run=run_disable if disabled else run_enable)
    capacity = actions.add_parser("capacity", help="set how many conversations an account handles at once")
    capacity.add_argument("name")
    capacity.add_argument("capacity", type=int)
    capacity.set_defaults(run=run_capacity)


def _password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated)."""
    if not from_stdin:
        return team.generated_password(), True
    return team.password(sys.stdin.readline().rstrip("\r\n")), False


def run_add(args: argparse.Namespace) -> int:
    name = team.account_name(args.name)
    password, generated = _password(args.password_stdin)
    with node(args) as (config, _, store):
        capacity = config.desk.default_capacity if args.capacity is None else args.capacity
        store.write_sync(team.add_account(name, args.role, capacity, args.display_name, hash_password(password),
                                          actor=ACTOR, ip=FROM))
    print(f"added {args.role} {name}" + (f"  password: {password}  (shown once)" if generated else ""))
    apply_live(config, "accounts")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with node(args) as (_, _, store):
        found = store.read_sync(accounts.accounts)
    if args.json:
        print(json.dumps([msgspec.to_builtins(a.view()) for a in found], ensure_ascii=False))
        return 0
    print(f"{'name':<20} {'role':<11} {'capacity':>8}  state")
    for account in found:
        print(f"{account.name:<20} {account.role:<11} {account.capacity:>8}  "
              f"{'disabled' if account.disabled else 'enabled'}")
    return 0


def _change(args: argparse.Namespace, change: dict[str, Any]) -> None:
    with node(args) as (config, _, store):
        store.write_sync(team.change_account(args.name, change, actor=ACTOR, ip=FROM))
    apply_live(config, "accounts")


def run_passwd(args: argparse.Namespace) -> int:
    password, generated = _password(args.password_stdin)
    _change(args, {"password_hash": hash_password(password)})
    print(f"new password for {args.name}" + (f": {password}  (shown once)" if generated else " set"))
    return 0


def run_disable(args: argparse.Namespace) -> int:
    _change(args, {"disabled": True})
    print(f"disabled {args.name}; their sessions have ended")
    return 0


def run_enable(args: argparse.Namespace) -> int:
    _change(args, {"disabled": False})
    print(f"enabled {args.name}")
    return 0


def run_capacity(args: argparse.Namespace) -> int:
    _change(args, {"capacity": args.capacity})
    print(f"{args.name} now handles up to {args.capacity} conversations at once")
    return 0
