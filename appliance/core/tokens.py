"""Signed visitor tokens and hashed bearer tokens.

A visitor token is ``base64url(msgpack([visitor_id, expires_s])) + "." + base64url(hmac)``,
signed with the node's secret: stateless to check, impossible to forge, and it names the only
visitor whose conversations it opens. Bearer tokens for the admin/agent API are random and
stored only as their SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import msgspec

from appliance.core.errors import AuthError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class VisitorTokens:
    def __init__(self, secret: bytes, ttl_s: int) -> None:
        self._secret = secret
        self._ttl_s = ttl_s

    def issue(self, visitor_id: str, now_s: float) -> str:
        body = _b64(msgspec.msgpack.encode([visitor_id, int(now_s) + self._ttl_s]))
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, now_s: float) -> str:
        """The visitor id the token was issued to; AuthError if forged, malformed or expired."""
        body, _, signature = token.partition(".")
        # Compared as bytes: compare_digest refuses str with non-ASCII characters.
        if not body or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            raise AuthError("invalid visitor token")
        try:
            visitor_id, expires_s = msgspec.msgpack.decode(_unb64(body), type=tuple[str, int])
        except (ValueError, msgspec.DecodeError):
            raise AuthError("invalid visitor token") from None
        if expires_s < now_s:
            raise AuthError("visitor token expired")
        return visitor_id

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, body.encode(), hashlib.sha256).digest()[:24])


def new_bearer_token() -> str:
    return "apl_" + secrets.token_urlsafe(32)


def hash_bearer_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    scheme, _, rest = stored.partition("$")
    salt_text, _, digest_text = rest.partition("$")
    if scheme != "scrypt" or not digest_text:
        return False
    expected = hash_password(password, _unb64(salt_text))
    return hmac.compare_digest(expected, stored)
