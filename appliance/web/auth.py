"""Who is calling: a console session cookie (with CSRF on every change) or a bearer token.

Bearer tokens (``appliance token create``) serve scripts; the console signs in with a
password and gets an HttpOnly, SameSite=Strict cookie. A request made with the cookie that
changes anything must carry ``X-CSRF-Token`` with the session's token, or it gets 403.

The principal carries the client's address (``ip``) into every audit record of what it does.
A bearer token's use is audited the first time this process sees it and then at most once an
hour (``SignIn.token_used``), without a database read or an awaited write on the request.
"""

from __future__ import annotations

import hmac

from litestar import Request
from litestar.connection import ASGIConnection

from appliance.core import permissions
from appliance.core.errors import AuthError, Forbidden
from appliance.core.tokens import hash_bearer_token
from appliance.desk.agents import Actor
from appliance.runtime import Runtime
from appliance.store import accounts

COOKIE = "appliance_session"
CSRF_HEADER = "x-csrf-token"
_SAFE = {"GET", "HEAD", "OPTIONS"}


class Principal(Actor, frozen=True, kw_only=True):
    via: str = "token"
    csrf: str = ""

    @property
    def actor(self) -> str:
        return self.audit_name

    def require(self, action: permissions.Action) -> None:
        if not permissions.allowed(self.role, action):
            raise Forbidden(f"this needs a role that may {action} (you are {self.role})")


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None when there is no header."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'")
    return value.strip()


def client_address(connection: ASGIConnection[object, object, object, object]) -> str:
    return connection.client.host if connection.client else "unknown"


async def token_owner(token: str, ip: str, runtime: Runtime) -> accounts.TokenOwner:
    """The active token ``token`` is; AuthError when there is none. Its use is audited."""
    found = await runtime.store.read(lambda c: accounts.bearer(c, hash_bearer_token(token)))
    if found is None:
        raise AuthError("unknown or revoked API token")
    runtime.signin.token_used(found, ip)
    return found


async def identify(connection: ASGIConnection[object, object, object, object], runtime: Runtime,
                   *, check_csrf: bool) -> Principal:
    token = bearer(connection.headers.get("authorization"))
    ip = client_address(connection)
    if token is not None:
        found = await token_owner(token, ip, runtime)
        if not permissions.allowed(found.role, "desk.view"):  # an ``api`` token is no desk credential
            raise AuthError(f"this is an {found.role} token: it works only on the OpenAI-compatible API (/v1/)")
        return Principal(name=found.name, role=found.role, ip=ip)
    cookie = connection.cookies.get(COOKIE)
    if not cookie:
        raise AuthError("sign in at /console, or send 'Authorization: Bearer <token>' (see `appliance token create`)")
    session = await runtime.signin.session(cookie)
    if session is None:
        raise AuthError("your session has ended; sign in again")
    account, csrf = session
    if check_csrf and not hmac.compare_digest(connection.headers.get(CSRF_HEADER, ""), csrf):
        raise Forbidden("missing or wrong X-CSRF-Token header")
    runtime.switchboard.presence.activity(account.name)
    return Principal(name=account.name, role=account.role, ip=ip, via="session", csrf=csrf)


async def principal(request: Request[object, object, object], runtime: Runtime) -> Principal:
    return await identify(request, runtime, check_csrf=request.method not in _SAFE)


async def admin(request: Request[object, object, object], runtime: Runtime) -> Principal:
    found = await principal(request, runtime)
    if found.role != "admin":
        raise Forbidden("this needs an admin")
    return found
