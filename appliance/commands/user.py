"""``appliance user add|list|passwd|disable|enable``: console accounts.

A password is never taken from the command line (it would land in the shell history): it is
generated and printed once, or read from standard input with ``--password-stdin``. Changing a
password or disabling an account ends that account's sessions at once, and the server running on
this node closes its open consoles before the command returns. Every change is audited
(actor ``cli``, from ``local``) with the account before and after it (never the password hash).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys

import msgspec

from appliance.commands._context import node
from appliance.commands._live import apply_live
from appliance.core import events as ev
from appliance.core.config import Config
from appliance.core.errors import Conflict, InputError, NotFound
from appliance.core.tokens import hash_password, new_id
from appliance.store import Store, WriteTxn, accounts
from appliance.store.accounts import Account

ROLES = ["admin", "supervisor", "agent"]
MIN_PASSWORD = 10


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("user", help="manage console accounts (agents, supervisors, admins)")
    actions = parser.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create an account; prints a generated password once")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True)
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
        return secrets.token_urlsafe(12), True
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")
    return password, False


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() or c in ":/\\" for c in name):
        raise InputError(f"account name {name!r}: 1-64 characters, no spaces, ':' or slashes")
    return name


def _capacity(value: int) -> int:
    if not 0 <= value <= 100:
        raise InputError("--capacity must be between 0 and 100")
    return value


def run_add(args: argparse.Namespace) -> int:
    name = _name(args.name)
    password, generated = _password(args.password_stdin)
    with node(args) as (config, _, store):
        capacity = _capacity(config.desk.default_capacity if args.capacity is None else args.capacity)

        def work(txn: WriteTxn) -> None:
            if accounts.account(txn.conn, name) is not None:
                raise Conflict(f"an account named {name!r} exists (use `appliance user passwd` or `enable`)")
            added = ev.UserUpserted(user_id=new_id("usr"), name=name, role=args.role, capacity=capacity,
                                    display_name=args.display_name.strip(), password_hash=hash_password(password))
            txn.append(added)
            txn.append(ev.AuditRecorded(actor="cli", action="user.add", target=name, detail=args.role, ip="local",
                                        after=_state(added)))

        store.write_sync(work)
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


def _change(args: argparse.Namespace, name: str, action: str, change: dict[str, object], end_sessions: bool) -> Config:
    with node(args) as (config, _, store):
        _write_change(store, name, action, change, end_sessions)
    return config


def _write_change(store: Store, name: str, action: str, change: dict[str, object], end_sessions: bool) -> None:
    def work(txn: WriteTxn) -> None:
        found = accounts.account(txn.conn, name)
        if found is None:
            raise NotFound(f"no account named {name!r} (see `appliance user list`)")
        changed = _upsert(found, **change)
        txn.append(changed)
        txn.append(ev.AuditRecorded(actor="cli", action=f"user.{action}", target=name, ip="local",
                                    before=_state(found), after=_state(changed),
                                    detail="password changed" if action == "passwd" else ""))
        if end_sessions:
            accounts.end_sessions_of(txn.conn, found.id)

    store.write_sync(work)


def _state(account: Account | ev.UserUpserted) -> str:
    """What an audit record shows of an account: everything but the password hash."""
    return json.dumps({"role": account.role, "display_name": account.display_name, "capacity": account.capacity,
                       "disabled": account.disabled}, ensure_ascii=False, sort_keys=True)


def _upsert(found: Account, **change: object) -> ev.UserUpserted:
    fields: dict[str, object] = {
        "user_id": found.id, "name": found.name, "role": found.role, "password_hash": found.password_hash,
        "disabled": found.disabled, "display_name": found.display_name, "capacity": found.capacity, **change,
    }
    return ev.UserUpserted(**fields)  # type: ignore[arg-type]


def run_passwd(args: argparse.Namespace) -> int:
    password, generated = _password(args.password_stdin)
    config = _change(args, args.name, "passwd", {"password_hash": hash_password(password)}, end_sessions=True)
    print(f"new password for {args.name}" + (f": {password}  (shown once)" if generated else " set"))
    apply_live(config, "accounts")
    return 0


def run_disable(args: argparse.Namespace) -> int:
    config = _change(args, args.name, "disable", {"disabled": True}, end_sessions=True)
    print(f"disabled {args.name}; their sessions have ended")
    apply_live(config, "accounts")
    return 0


def run_enable(args: argparse.Namespace) -> int:
    config = _change(args, args.name, "enable", {"disabled": False}, end_sessions=False)
    print(f"enabled {args.name}")
    apply_live(config, "accounts")
    return 0


def run_capacity(args: argparse.Namespace) -> int:
    config = _change(args, args.name, "capacity", {"capacity": _capacity(args.capacity)}, end_sessions=False)
    print(f"{args.name} now handles up to {args.capacity} conversations at once")
    apply_live(config, "accounts")
    return 0
