"""Request bodies bounded before they cost memory: size, time, media type and JSON nesting.

Runs in front of every handler that takes a body. The body is read here, chunk by chunk,
counting as it goes, so a chunked upload (no Content-Length) is refused at the limit instead of
after it has been buffered; a declared Content-Length over the limit is refused before a byte
is read. JSON bodies are parsed once here without a schema, which is cheap, so a body nested
deeper than the decoder's recursion limit is a 400 instead of a RecursionError in a handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from appliance.core.config import ServerConfig
from appliance.core.errors import InputError, TooLarge, TooSlow, UnsupportedMedia

UPLOAD_PATH = "/api/v1/attachments"
DOCUMENT_UPLOAD_PATH = "/api/v1/admin/kb/documents"  # one file as the raw body, any media type
IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/octet-stream"}
_NO_BODY = {"GET", "HEAD", "OPTIONS"}


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


def _media_type(scope: Scope) -> str:
    return _header(scope, b"content-type").split(";", 1)[0].strip().lower()


async def _read(receive: Receive, limit: int) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InputError("the client went away while sending the body")
        body += message.get("body", b"")
        if len(body) > limit:
            raise TooLarge(f"request body is over the limit of {limit} bytes")
        if not message.get("more_body", False):
            return bytes(body)


def _check_json(body: bytes, media_type: str) -> None:
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMedia(f"send the body as application/json (got {media_type or 'no Content-Type'})")
    try:
        msgspec.json.decode(body)
    except RecursionError:
        raise InputError("invalid request: JSON nested too deeply") from None
    except msgspec.DecodeError as exc:
        raise InputError(f"invalid request: malformed JSON ({exc})") from None


def bounded_bodies(server: ServerConfig) -> Callable[[ASGIApp], ASGIApp]:
    """The middleware factory for litestar's ``middleware=[...]`` (its errors go through web/errors.py)."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def bounded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["method"] in _NO_BODY:
                await app(scope, receive, send)
                return
            upload = scope["path"] == UPLOAD_PATH
            document = scope["path"] == DOCUMENT_UPLOAD_PATH and scope["method"] == "POST"
            limit = (server.max_image_bytes if upload else server.max_document_bytes if document
                     else server.max_body_bytes)
            declared = _header(scope, b"content-length")
            if declared.isdigit() and int(declared) > limit:
                raise TooLarge(f"request body is {declared} bytes; the limit is {limit}")
            try:
                body = await asyncio.wait_for(_read(receive, limit), server.body_timeout_s)
            except TimeoutError:
                raise TooSlow(f"the request body did not arrive within {server.body_timeout_s:g} s") from None
            media_type = _media_type(scope)
            if body and upload and media_type not in IMAGE_TYPES:
                raise UnsupportedMedia(f"upload the image as its own media type, such as image/png (got {media_type})")
            if body and not upload and not document:
                _check_json(body, media_type)
            delivered = False

            async def replay() -> Message:
                nonlocal delivered
                if delivered:
                    return await receive()
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}

            await app(scope, replay, send)

        return bounded

    return middleware
