"""Bearer tokens for the admin/agent API (created with `appliance token create`)."""

from __future__ import annotations

import time
from typing import Literal

import msgspec
from litestar import Request

from appliance.core.errors import AuthError, Forbidden
from appliance.core.tokens import hash_bearer_token
from appliance.runtime import Runtime
from appliance.store import Connection


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    token_id: str
    name: str
    role: Literal["admin", "agent"]

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"


def _lookup(conn: Connection, token_hash: str) -> Principal | None:
    row = conn.execute(
        "SELECT id, name, role FROM api_tokens WHERE token_hash = ? AND revoked = 0", (token_hash,)
    ).fetchone()
    return Principal(token_id=row[0], name=row[1], role=row[2]) if row else None


async def principal(request: Request[object, object, object], runtime: Runtime) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("send an API token as 'Authorization: Bearer <token>' (see `appliance token create`)")
    found = await runtime.store.read(lambda c: _lookup(c, hash_bearer_token(token.strip())))
    if found is None:
        raise AuthError("unknown or revoked API token")
    runtime.agents_seen_at = time.monotonic()
    return found


async def admin(request: Request[object, object, object], runtime: Runtime) -> Principal:
    found = await principal(request, runtime)
    if found.role != "admin":
        raise Forbidden("this needs an admin token")
    return found
