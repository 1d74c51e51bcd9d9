"""The team's accounts and API tokens: the one way ``appliance user|token`` and the admin API
change them.

Each change is a write (a function of a :class:`WriteTxn`) that checks, appends the event and an
audit record with the account before and after it (never a password hash) and who did it from
where (``cli``/``local`` for the command line, the admin and the client's address over HTTP).
A new password, a new role or disabling an account ends its console sessions in the same
transaction; the caller then has the running server act on it (``accounts`` refresh). Hash
passwords (scrypt, slow on purpose) before calling, off the event loop.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from appliance.core import events as ev
from appliance.core import permissions
from appliance.core.errors import Conflict, InputError, NotFound
from appliance.core.hlc import physical_ms
from appliance.core.tokens import hash_bearer_token, new_bearer_token, new_id
from appliance.core.webhooks import iso_ms
from appliance.store import WriteTxn, accounts
from appliance.store.accounts import Account, TokenRow

MIN_PASSWORD = 10
MAX_CAPACITY = 100
MAX_DISPLAY_NAME = 64
MAX_TOKEN_NAME = 200


def account_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or any(c.isspace() or not c.isprintable() or c in ":/\\" for c in name):
        raise InputError(f"account name {name!r}: 1-64 characters, no spaces, control characters, ':' or slashes")
    return name


def account_role(role: str) -> str:
    if role not in permissions.ACCOUNT_ROLES:
        raise InputError(f"role {role!r}: one of {', '.join(permissions.ACCOUNT_ROLES)}")
    return role


def capacity(value: int) -> int:
    if not 0 <= value <= MAX_CAPACITY:
        raise InputError(f"capacity must be between 0 and {MAX_CAPACITY}")
    return value


def display_name(value: str) -> str:
    value = value.strip()
    if len(value) > MAX_DISPLAY_NAME or not value.isprintable():
        raise InputError(f"display name: at most {MAX_DISPLAY_NAME} characters, no control characters")
    return value


def password(value: str) -> str:
    """A chosen password, checked (it is never echoed in the error)."""
    if len(value) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")
    return value


def generated_password() -> str:
    return secrets.token_urlsafe(12)


def _state(account: Account | ev.UserUpserted) -> str:
    """What an audit record shows of an account: everything but the password hash."""
    return json.dumps({"role": account.role, "display_name": account.display_name, "capacity": account.capacity,
                       "disabled": account.disabled}, ensure_ascii=False, sort_keys=True)


def add_account(name: str, role: str, capacity_: int, display_name_: str, password_hash: str, *,
                actor: str, ip: str) -> Callable[[WriteTxn], ev.UserUpserted]:
    name, role, capacity_, display_name_ = (account_name(name), account_role(role), capacity(capacity_),
                                            display_name(display_name_))

    def work(txn: WriteTxn) -> ev.UserUpserted:
        if accounts.account(txn.conn, name) is not None:
            raise Conflict(f"an account named {name!r} exists")
        added = ev.UserUpserted(user_id=new_id("usr"), name=name, role=role, capacity=capacity_,  # type: ignore[arg-type]
                                display_name=display_name_, password_hash=password_hash)
        txn.append(added)
        txn.append(ev.AuditRecorded(actor=actor, action="user.add", target=name, detail=role, ip=ip,
                                    after=_state(added)))
        return added

    return work


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "role": account_role, "capacity": capacity, "display_name": display_name, "disabled": bool, "password_hash": str,
}


def _action(change: dict[str, Any]) -> str:
    """The audit action (``user.<action>``): the command line's name for a one-field change."""
    if "password_hash" in change:
        return "passwd"
    if len(change) > 1:
        return "update"
    (field, value), = change.items()
    return ("disable" if value else "enable") if field == "disabled" else field


def change_account(name: str, change: dict[str, Any], *, actor: str, ip: str,
                   by: str = "") -> Callable[[WriteTxn], ev.UserUpserted]:
    """Set some of role, capacity, display_name, disabled, password_hash. ``by`` is the account
    making the change (the console's admin), who may neither disable nor demote themself; the
    last enabled admin can be neither disabled nor given another role."""
    unknown = set(change) - set(_CHECKS)
    if unknown or not change:
        raise InputError(f"nothing to change: give one of {', '.join(sorted(set(_CHECKS) - {'password_hash'}))}")
    change = {field: _CHECKS[field](value) for field, value in change.items()}
    action = _action(change)

    def work(txn: WriteTxn) -> ev.UserUpserted:
        found = accounts.account(txn.conn, name)
        if found is None:
            raise NotFound(f"no account named {name!r}")
        changed = ev.UserUpserted(**{  # type: ignore[arg-type]
            "user_id": found.id, "name": found.name, "role": found.role, "password_hash": found.password_hash,
            "disabled": found.disabled, "display_name": found.display_name, "capacity": found.capacity, **change})
        if found.name == by and changed.disabled and not found.disabled:
            raise Conflict("you cannot disable your own account: another admin has to")
        if found.name == by and changed.role != found.role:
            raise Conflict("you cannot change your own role: another admin has to")
        if found.role == "admin" and not found.disabled and (changed.disabled or changed.role != "admin"):
            admins = [a for a in accounts.accounts(txn.conn) if a.role == "admin" and not a.disabled]
            if len(admins) <= 1:
                raise Conflict(f"{name!r} is the last enabled admin: add or enable another admin first")
        txn.append(changed)
        txn.append(ev.AuditRecorded(actor=actor, action=f"user.{action}", target=name, ip=ip,
                                    before=_state(found), after=_state(changed),
                                    detail="password changed" if action == "passwd" else ""))
        if "password_hash" in change or changed.role != found.role or (changed.disabled and not found.disabled):
            accounts.end_sessions_of(txn.conn, found.id)
        return changed

    return work


def issue_token(name: str, role: str, *, actor: str, ip: str) -> tuple[str, Callable[[WriteTxn], TokenRow]]:
    """(the token, shown once and stored only as its SHA-256; the write that issues it)."""
    name = name.strip()
    if not name or len(name) > MAX_TOKEN_NAME:
        raise InputError(f"token name: 1-{MAX_TOKEN_NAME} characters (who or what the token is for)")
    if role not in permissions.TOKEN_ROLES:
        raise InputError(f"token role {role!r}: one of {', '.join(permissions.TOKEN_ROLES)}")
    token, token_id = new_bearer_token(), new_id("tok")

    def work(txn: WriteTxn) -> TokenRow:
        issued = txn.append(ev.TokenIssued(token_id=token_id, name=name, role=role,  # type: ignore[arg-type]
                                           token_hash=hash_bearer_token(token)))
        txn.append(ev.AuditRecorded(actor=actor, action="token.create", target=name, detail=token_id, ip=ip,
                                    after=role))
        return TokenRow(token_id=token_id, name=name, role=role, revoked=False,
                        created_at=iso_ms(physical_ms(issued.hlc)))

    return token, work


def revoke_token(wanted: str, *, actor: str, ip: str, by_name: bool = True) -> Callable[[WriteTxn], TokenRow]:
    """Revoke an active token by id, or (``by_name``) by name when one active token has it."""
    wanted = wanted.strip()

    def work(txn: WriteTxn) -> TokenRow:
        active = [t for t in accounts.tokens(txn.conn) if not t.revoked]
        chosen = [t for t in active if t.token_id == wanted] or (
            [t for t in active if t.name == wanted] if by_name else [])
        if not chosen:
            raise NotFound(f"no active token with {'id or name' if by_name else 'id'} {wanted!r}")
        if len(chosen) > 1:
            ids = ", ".join(t.token_id for t in chosen)
            raise Conflict(f"{len(chosen)} active tokens are named {wanted!r} ({ids}); revoke one by id")
        token = chosen[0]
        txn.append(ev.TokenRevoked(token_id=token.token_id))
        txn.append(ev.AuditRecorded(actor=actor, action="token.revoke", target=token.name, detail=token.token_id,
                                    ip=ip, before="active", after="revoked"))
        token.revoked = True
        return token

    return work
