"""The admin API of the team: console accounts and API tokens (the console's Users page).

Admins only. The checks and writes are ``desk/team.py``, the same ones ``appliance user`` and
``appliance token`` make; each change is audited with the admin and the client's address, and
the server acts on it before answering (a disabled account's open consoles close). A generated
password and a new token's secret are in the answer that made them and nowhere else. An admin
can neither disable nor demote their own account (409).
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import Provide

from appliance.core import permissions
from appliance.core.desk import User
from appliance.core.tokens import hash_password
from appliance.desk import team
from appliance.runtime import Runtime
from appliance.store import accounts
from appliance.store.accounts import TokenRow
from appliance.web.auth import Principal, admin

Text = Annotated[str, msgspec.Meta(max_length=256)]


class AccountIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Text
    role: Text
    display_name: Text = ""  # empty: the account name
    capacity: int | None = None  # none: desk.default_capacity
    password: Text = ""  # empty: one is generated and shown in the answer, once


class AccountChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    role: Text | None = None
    capacity: int | None = None
    display_name: Text | None = None
    disabled: bool | None = None


class PasswordIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    password: Text = ""  # empty: one is generated


class AccountsOut(msgspec.Struct, kw_only=True):
    accounts: list[User]
    roles: list[str]


class AccountOut(msgspec.Struct, kw_only=True):
    account: User
    password: str = ""  # the generated one, this once; empty when the admin chose it


class TokenIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Text
    role: Text


class TokensOut(msgspec.Struct, kw_only=True):
    tokens: list[TokenRow]
    roles: list[str]


class TokenOut(msgspec.Struct, kw_only=True):
    token: TokenRow
    secret: str  # the bearer token itself, this once; stored only as its SHA-256


async def _hashed(password: str) -> tuple[str, str]:
    """(password, its scrypt hash): the chosen one checked, or a generated one; hashed on a worker."""
    chosen = team.password(password) if password else team.generated_password()
    return chosen, await asyncio.to_thread(hash_password, chosen)


def _by(who: Principal) -> str:
    """The account behind the request (a bearer token's name is no account)."""
    return who.name if who.via == "session" else ""


class UsersController(Controller):
    path = "/api/v1/admin/users"
    dependencies = {"who": Provide(admin)}
    tags = ["admin"]

    @get("/", summary="Console accounts: role, capacity, display name, disabled, presence (never a password)")
    async def list_accounts(self, runtime: Runtime, who: Principal) -> AccountsOut:
        who.require("users.manage")
        return AccountsOut(accounts=await runtime.switchboard.users(), roles=list(permissions.ACCOUNT_ROLES))

    @post("/", status_code=201, summary="Add an account; a generated password is in the answer, this once")
    async def add(self, data: AccountIn, runtime: Runtime, who: Principal) -> AccountOut:
        who.require("users.manage")
        password, hashed = await _hashed(data.password)
        capacity = runtime.config.desk.default_capacity if data.capacity is None else data.capacity
        added = await runtime.store.write(team.add_account(data.name, data.role, capacity, data.display_name, hashed,
                                                           actor=who.actor, ip=who.ip))
        await runtime.refresh(["accounts"])
        return AccountOut(account=await runtime.user_view(added.name), password="" if data.password else password)

    @patch("/{name:str}", summary="Change an account's role, capacity, display name, or disable/enable it")
    async def change(self, name: str, data: AccountChange, runtime: Runtime, who: Principal) -> AccountOut:
        who.require("users.manage")
        change: dict[str, Any] = msgspec.structs.asdict(data)
        work = team.change_account(name, {k: v for k, v in change.items() if v is not None}, actor=who.actor,
                                   ip=who.ip, by=_by(who))
        await runtime.store.write(work)
        await runtime.refresh(["accounts"])
        return AccountOut(account=await runtime.user_view(name))

    @post("/{name:str}/password", status_code=200,
          summary="Set a new password (generated when none is given, shown once); ends the account's sessions")
    async def reset_password(self, name: str, data: PasswordIn, runtime: Runtime, who: Principal) -> AccountOut:
        who.require("users.manage")
        password, hashed = await _hashed(data.password)
        await runtime.store.write(team.change_account(name, {"password_hash": hashed}, actor=who.actor, ip=who.ip))
        await runtime.refresh(["accounts"])
        return AccountOut(account=await runtime.user_view(name), password="" if data.password else password)


class TokensController(Controller):
    path = "/api/v1/admin/tokens"
    dependencies = {"who": Provide(admin)}
    tags = ["admin"]

    @get("/", summary="API tokens: id, name, role, when issued, revoked (never the secret)")
    async def list_tokens(self, runtime: Runtime, who: Principal) -> TokensOut:
        who.require("users.manage")
        return TokensOut(tokens=await runtime.store.read(accounts.tokens), roles=list(permissions.TOKEN_ROLES))

    @post("/", status_code=201, summary="Issue a token; its secret is in the answer, this once")
    async def create(self, data: TokenIn, runtime: Runtime, who: Principal) -> TokenOut:
        who.require("users.manage")
        secret, work = team.issue_token(data.name, data.role, actor=who.actor, ip=who.ip)
        token = await runtime.store.write(work)
        await runtime.refresh(["accounts"])
        return TokenOut(token=token, secret=secret)

    @delete("/{token_id:str}", status_code=200, summary="Revoke a token by id; it stops working at once")
    async def revoke(self, token_id: str, runtime: Runtime, who: Principal) -> TokenRow:
        who.require("users.manage")
        token = await runtime.store.write(team.revoke_token(token_id, actor=who.actor, ip=who.ip, by_name=False))
        await runtime.refresh(["accounts"])
        return token


ROUTES = [UsersController, TokensController]
