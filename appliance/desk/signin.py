"""Signing in to the console: password check, sessions, lockout and per-address limits.

Passwords are scrypt hashes (memory-hard; ``core/tokens.py``), checked on a worker thread so a
burst of sign-ins never stalls the event loop. A session is a random token in an HttpOnly
cookie, stored only as its SHA-256, with its own CSRF token. After ``login_max_failures``
wrong passwords in a row an account is locked for ``lockout_s``; one address gets
``login_per_ip_per_minute`` attempts. Every sign-in, failure and sign-out is audited with the
client's address; so is a bearer token's use, once per token per ``TOKEN_USE_AUDIT_EVERY_S``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable

import msgspec

from appliance.core import events as ev
from appliance.core.config import SecurityConfig
from appliance.core.errors import AuthError, RateLimited
from appliance.core.quotas import KeyedLimit, Limit
from appliance.core.tokens import hash_bearer_token, verify_password
from appliance.desk.agents import Actor
from appliance.store import Store, WriteTxn, accounts
from appliance.store.accounts import Account, TokenOwner

WRONG = "wrong username or password"
TOKEN_USE_AUDIT_EVERY_S = 3600.0


class SignedIn(msgspec.Struct, kw_only=True):
    account: Account
    session_token: str
    csrf_token: str


class _Failures(msgspec.Struct):
    count: int = 0
    locked_until: float = 0.0


class SignIn:
    def __init__(self, store: Store, config: SecurityConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._failures: dict[str, _Failures] = {}
        self._by_address: dict[str, deque[float]] = {}
        self.outcomes: dict[str, int] = {"ok": 0, "wrong": 0, "locked": 0, "rate_limited": 0}
        self._token_uses = KeyedLimit(Limit("token_use_audit", 1, TOKEN_USE_AUDIT_EVERY_S), max_keys=10_000)

    async def sign_in(self, username: str, password: str, address: str) -> SignedIn:
        now = self._clock()
        try:
            self._limit_address(address, now)
        except RateLimited:
            self.outcomes["rate_limited"] += 1
            raise
        failures = self._failures.setdefault(username, _Failures())
        if failures.locked_until > now:
            self.outcomes["locked"] += 1
            raise RateLimited(f"too many failed sign-ins for {username!r}; try again later",
                              failures.locked_until - now)
        found = await self._store.read(lambda c: accounts.account(c, username))
        ok = found is not None and not found.disabled and await asyncio.to_thread(
            verify_password, password, found.password_hash)
        if not ok or found is None:
            failures.count += 1
            locked = failures.count >= self._config.login_max_failures
            if locked:
                failures.locked_until = now + self._config.lockout_s
                failures.count = 0
            await self._store.append(ev.AuditRecorded(
                actor=f"user:{username}", action="auth.sign_in_failed", target=username, ip=address,
                detail="account locked" if locked else ""))
            self.outcomes["locked" if locked else "wrong"] += 1
            if locked:
                raise RateLimited(f"too many failed sign-ins for {username!r}; locked for "
                                  f"{self._config.lockout_s // 60 or 1} min", self._config.lockout_s)
            raise AuthError(WRONG)
        self._failures.pop(username, None)
        self.outcomes["ok"] += 1
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        account = found

        def work(txn: WriteTxn) -> None:
            accounts.add_session(txn.conn, hash_bearer_token(token), account.id, csrf, int(time.time() * 1000),
                                 self._config.session_ttl_s * 1000)
            txn.append(ev.AuditRecorded(actor=f"{account.role}:{account.name}", action="auth.sign_in",
                                        target=account.name, ip=address))

        await self._store.write(work)
        return SignedIn(account=account, session_token=token, csrf_token=csrf)

    async def session(self, token: str) -> tuple[Account, str] | None:
        now_ms = int(time.time() * 1000)
        return await self._store.read(lambda c: accounts.session(c, hash_bearer_token(token), now_ms))

    async def sign_out(self, token: str, who: Actor) -> None:
        def work(txn: WriteTxn) -> None:
            accounts.end_session(txn.conn, hash_bearer_token(token))
            txn.append(ev.AuditRecorded(actor=who.audit_name, action="auth.sign_out", target=who.name, ip=who.ip))

        await self._store.write(work)

    def token_used(self, token: TokenOwner, address: str) -> None:
        """Audit a bearer token's use: the first in this process, then at most once an hour per
        token. Costs no database read and nobody waits for the write."""
        if not self._token_uses.bucket(token.token_id).try_acquire(1, self._clock()):
            return
        record = ev.AuditRecorded(actor=f"{token.role}:{token.name}", action="token.use", target=token.name,
                                  detail=token.token_id, ip=address)
        self._store.write_soon(lambda txn: txn.append(record))

    def _limit_address(self, address: str, now: float) -> None:
        window = self._by_address.setdefault(address, deque())
        while window and now - window[0] > 60:
            window.popleft()
        if len(window) >= self._config.login_per_ip_per_minute:
            raise RateLimited("too many sign-in attempts from this address; wait a minute", 60 - (now - window[0]))
        window.append(now)
