"""Queries about people: users, console sessions and API tokens."""

from __future__ import annotations

import msgspec

from appliance.core.desk import User
from appliance.core.hlc import physical_ms
from appliance.core.webhooks import iso_ms
from appliance.store.db import Connection


class Account(msgspec.Struct, kw_only=True):
    """A user row with what sign-in needs; never sent to a client (it has the password hash)."""

    id: str
    name: str
    role: str
    password_hash: str
    disabled: bool
    display_name: str
    capacity: int

    def view(self) -> User:
        return User(name=self.name, display_name=self.display_name or self.name, role=self.role,  # type: ignore[arg-type]
                    capacity=self.capacity, disabled=self.disabled)


_COLUMNS = "id, name, role, password_hash, disabled, display_name, capacity"


def _account(r: tuple) -> Account:  # type: ignore[type-arg]
    return Account(id=r[0], name=r[1], role=r[2], password_hash=r[3], disabled=bool(r[4]), display_name=r[5],
                   capacity=r[6])


def account(conn: Connection, name: str) -> Account | None:
    found = conn.execute(f"SELECT {_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
    return _account(found) if found else None


def accounts(conn: Connection) -> list[Account]:
    return [_account(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY name")]


def session(conn: Connection, token_hash: str, now_ms: int) -> tuple[Account, str] | None:
    """The account behind a live session and the session's CSRF token."""
    found = conn.execute(
        f"SELECT {', '.join('u.' + c for c in _COLUMNS.split(', '))}, s.csrf FROM sessions s"
        " JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_ms > ? AND u.disabled = 0",
        (token_hash, now_ms)).fetchone()
    return (_account(found[:7]), found[7]) if found else None


def add_session(conn: Connection, token_hash: str, user_id: str, csrf: str, now_ms: int, ttl_ms: int) -> None:
    conn.execute("DELETE FROM sessions WHERE expires_ms <= ?", (now_ms,))
    conn.execute("INSERT INTO sessions (token_hash, user_id, csrf, created_ms, expires_ms) VALUES (?, ?, ?, ?, ?)",
                 (token_hash, user_id, csrf, now_ms, now_ms + ttl_ms))


def end_session(conn: Connection, token_hash: str) -> None:
    conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))


def end_sessions_of(conn: Connection, user_id: str) -> None:
    conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))


class TokenOwner(msgspec.Struct, kw_only=True):
    token_id: str
    name: str
    role: str


def bearer(conn: Connection, token_hash: str) -> TokenOwner | None:
    found = conn.execute("SELECT id, name, role FROM api_tokens WHERE token_hash = ? AND revoked = 0",
                         (token_hash,)).fetchone()
    return TokenOwner(token_id=found[0], name=found[1], role=found[2]) if found else None


class TokenRow(msgspec.Struct, kw_only=True):
    token_id: str
    name: str
    role: str
    revoked: bool
    created_at: str  # when it was issued (ISO 8601, UTC)


def tokens(conn: Connection) -> list[TokenRow]:
    """Every API token (never its hash), by name."""
    return [TokenRow(token_id=r[0], name=r[1], role=r[2], revoked=bool(r[3]), created_at=iso_ms(physical_ms(r[4])))
            for r in conn.execute("SELECT id, name, role, revoked, hlc FROM api_tokens ORDER BY name, hlc")]
