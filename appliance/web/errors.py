"""Every error becomes a JSON response here, and only here.

Body: ``{"status": <int>, "error": <code>, "message": <readable sentence>}``; under ``/v1/``
(the OpenAI-compatible API) OpenAI's ``{"error": {"message", "type", "param", "code"}}``.
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


_OPENAI: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None), 401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "insufficient_permissions"), 404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"), 413: ("invalid_request_error", "too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"), 503: ("server_error", "unavailable"),
}


def openai_error_body(status: int, message: str, param: str | None = None, code: str | None = None
                      ) -> dict[str, dict[str, str | None]]:
    kind, default_code = _OPENAI.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": param, "code": code or default_code}}


def _respond(status: int, code: str, message: str, headers: dict[str, str] | None = None, *,
             request: Request[object, object, object] | None = None, param: str | None = None,
             openai_code: str | None = None) -> Response[object]:
    body: object = ErrorBody(status=status, error=code, message=message)
    if request is not None and request.url.path.startswith("/v1/"):
        body = openai_error_body(status, message, param, openai_code)
    return Response(body, status_code=status, media_type=MediaType.JSON,
                    headers={"X-Content-Type-Options": "nosniff", **(headers or {})})


def appliance_error(request: Request[object, object, object], exc: errors.ApplianceError) -> Response[object]:
    status, code = status_of(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, errors.RateLimited):
        headers = {"Retry-After": str(max(1, round(exc.retry_after_s)))}
    return _respond(status, code, str(exc), headers, request=request, param=getattr(exc, "openai_param", None),
                    openai_code=getattr(exc, "openai_code", None))


def validation_error(request: Request[object, object, object], exc: ValidationException) -> Response[object]:
    problems = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key")
            message = str(item.get("message", "invalid"))
            problems.append(f"{key}: {message}" if key else message)
    detail = "; ".join(problems) or exc.detail
    keys = [item.get("key") for item in exc.extra if isinstance(item, dict)] if isinstance(exc.extra, list) else []
    return _respond(400, "invalid_input", f"invalid request: {detail}", request=request,
                    param=str(keys[0]) if keys and keys[0] else None)


def http_error(request: Request[object, object, object], exc: HTTPException) -> Response[object]:
    status = exc.status_code
    return _respond(status, _HTTP_CODES.get(status, "error"), exc.detail, exc.headers, request=request)


def undecodable(request: Request[object, object, object], exc: UnicodeDecodeError) -> Response[object]:
    return _respond(400, "invalid_input", "request body is not valid UTF-8", request=request)


def internal_error(request: Request[object, object, object], exc: Exception) -> Response[object]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _respond(500, "internal_error", "internal error; the details are in the server log", request=request)


EXCEPTION_HANDLERS = {
    errors.ApplianceError: appliance_error,
    ValidationException: validation_error,
    HTTPException: http_error,
    UnicodeDecodeError: undecodable,
    Exception: internal_error,
}
