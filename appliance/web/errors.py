"""Every error becomes a JSON response here, and only here.

Body: ``{"status": <int>, "error": <code>, "message": <readable sentence>}``.
"""

from __future__ import annotations

import logging

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from appliance.core import errors
from appliance.desk.frames import ErrorBody

log = logging.getLogger("appliance.web")

_STATUS: list[tuple[type[errors.ApplianceError], int, str]] = [
    (errors.TooLarge, 413, "too_large"),
    (errors.UnsupportedMedia, 415, "unsupported_media_type"),
    (errors.TooSlow, 408, "request_timeout"),
    (errors.InputError, 400, "invalid_input"),
    (errors.AuthError, 401, "unauthorized"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.NotFound, 404, "not_found"),
    (errors.Resolved, 409, "conversation_resolved"),
    (errors.Conflict, 409, "conflict"),
    (errors.RateLimited, 429, "rate_limited"),
    (errors.Unavailable, 503, "unavailable"),
    (errors.ConfigError, 400, "invalid_config"),
]
_HTTP_CODES = {400: "invalid_input", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "too_large", 415: "unsupported_media_type", 429: "rate_limited"}


def status_of(exc: errors.ApplianceError) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"


def _respond(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[object]:
    return Response(ErrorBody(status=status, error=code, message=message), status_code=status,
                    media_type=MediaType.JSON, headers={"X-Content-Type-Options": "nosniff", **(headers or {})})


def appliance_error(_: Request[object, object, object], exc: errors.ApplianceError) -> Response[object]:
    status, code = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, errors.RateLimited):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    return _respond(status, code, str(exc), headers)


def validation_error(request: Request[object, object, object], exc: ValidationException) -> Response[object]:
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key")
            message = str(item.get("message", "invalid"))
            problems.append(f"{key}: {message}" if key else message)
    detail = "; ".join(problems) or exc.detail
    return _respond(400, "invalid_input", f"invalid request: {detail}")


def http_error(request: Request[object, object, object], exc: HTTPException) -> Response[object]:
    status = exc.status_code
    return _respond(status, _HTTP_CODES.get(status, "error"), exc.detail, exc.headers)


def undecodable(request: Request[object, object, object], exc: UnicodeDecodeError) -> Response[object]:
    return _respond(400, "invalid_input", "request body is not valid UTF-8")


def internal_error(request: Request[object, object, object], exc: Exception) -> Response[object]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(500, "internal_error", "internal error; the details are in the server log")


EXCEPTION_HANDLERS = {
    errors.ApplianceError: appliance_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    UnicodeDecodeError: undecodable,
    Exception: internal_error,
}
