"""Console sign-in: ``/api/v1/auth/login``, ``/logout`` and ``/me``."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import Cookie

from appliance.core.desk import User
from appliance.core.errors import AuthError
from appliance.runtime import Runtime
from appliance.web.auth import COOKIE, client_address, principal


class LoginIn(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class SessionOut(msgspec.Struct, kw_only=True):
    user: User
    csrf_token: str


@post("/api/v1/auth/login", status_code=200, summary="Sign in to the console (sets the session cookie)")
async def login(data: LoginIn, request: Request[object, object, object], runtime: Runtime) -> Response[SessionOut]:
    signed = await runtime.signin.sign_in(data.username.strip(), data.password, client_address(request))
    runtime.switchboard.presence.activity(signed.account.name)
    cookie = Cookie(key=COOKIE, value=signed.session_token, httponly=True, samesite="strict", path="/",
                    secure=runtime.config.security.cookie_secure, max_age=runtime.config.security.session_ttl_s)
    user = await runtime.user_view(signed.account.name)
    return Response(SessionOut(user=user, csrf_token=signed.csrf_token), cookies=[cookie])


@post("/api/v1/auth/logout", status_code=204, summary="Sign out (ends the session)")
async def logout(request: Request[object, object, object], runtime: Runtime) -> Response[None]:
    who = await principal(request, runtime)
    token = request.cookies.get(COOKIE)
    if token:
        await runtime.signin.sign_out(token, who)
    return Response(None, status_code=204, cookies=[Cookie(key=COOKIE, value="", max_age=0, path="/",
                                                            httponly=True, samesite="strict")])


@get("/api/v1/auth/me", summary="The signed-in account and its CSRF token")
async def me(request: Request[object, object, object], runtime: Runtime) -> SessionOut:
    who = await principal(request, runtime)
    if who.via != "session":
        raise AuthError("no console session (bearer tokens have none)")
    return SessionOut(user=await runtime.user_view(who.name), csrf_token=who.csrf)


ROUTES = [login, logout, me]
