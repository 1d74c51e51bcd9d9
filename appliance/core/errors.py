"""The appliance's error tree.

    ApplianceError
    ├── ConfigError          a config file is missing, malformed, or has an unknown/mistyped key
    ├── InputError           a request or command argument is invalid (web: 400/413/422)
    │   ├── TooLarge         a body or text exceeds its configured limit (web: 413)
    │   └── UnsupportedMedia an upload is not a supported image (web: 415)
    ├── AuthError            no or bad credentials (web: 401)
    ├── Forbidden            valid credentials, not allowed (web: 403)
    ├── NotFound             the thing does not exist or is not visible to the caller (web: 404)
    ├── Conflict             the request collides with current state (web: 409)
    │   └── Resolved         a visitor writes to a resolved conversation (web: 409 conversation_resolved)
    ├── RateLimited          too many requests, or a locked account (web: 429 with Retry-After)
    ├── Unavailable          a dependency is not ready (web: 503)
    └── ProviderError        an LLM provider call failed; ``kind`` classifies it for fallback
"""

from __future__ import annotations

from typing import Literal

ProviderErrorKind = Literal[
    "rate_limited", "server_error", "timeout", "connection", "context_too_long", "bad_request", "circuit_open",
    "budget", "bad_response",
]


class ApplianceError(Exception):
    """Base of every error the appliance raises on purpose."""


class ConfigError(ApplianceError):
    pass


class InputError(ApplianceError):
    pass


class TooLarge(InputError):
    pass


class UnsupportedMedia(InputError):
    pass


class AuthError(ApplianceError):
    pass


class Forbidden(ApplianceError):
    pass


class NotFound(ApplianceError):
    pass


class Conflict(ApplianceError):
    pass


class Resolved(Conflict):
    """The conversation was resolved: it takes no more visitor messages (web: 409 ``conversation_resolved``)."""


class TooSlow(ApplianceError):
    """The client took too long to send its request."""


class RateLimited(ApplianceError):
    """Too many requests (or a locked account): try again after ``retry_after_s`` seconds."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(ApplianceError):
    pass


class ProviderError(ApplianceError):
    def __init__(
        self, kind: ProviderErrorKind, message: str, *, status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ProviderErrorKind = kind
        self.status = status
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        return self.kind in ("rate_limited", "server_error", "timeout", "connection")


class AllProvidersFailed(ApplianceError):
    """No chat provider produced an answer; ``attempts`` (trace Attempts) say why, in order."""

    def __init__(self, attempts: list[object], message: str = "every chat provider failed") -> None:
        super().__init__(message)
        self.attempts = attempts
