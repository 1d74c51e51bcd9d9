"""The pages a person opens: the visitor chat (``/chat``), its embed loader (``/widget.js``)
and the agent console (``/console``), served from ``web/static/`` inside the package (and so
inside the one-file build). Plain ES modules, no build step, no CDN."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.datastructures import CacheControlHeader
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from appliance.runtime import Runtime

STATIC = Path(__file__).resolve().parent / "static"

# The chat page may be framed by the sites in server.widget_frame_ancestors; the console by none.
_BASE_CSP = ("default-src 'self'; img-src 'self' blob: data:; connect-src 'self' ws: wss:;"
             " style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; form-action 'self'")
_CONSOLE_CSP = _BASE_CSP + "; frame-ancestors 'none'"


def _chat_csp(ancestors: list[str]) -> str:
    return f"{_BASE_CSP}; frame-ancestors {' '.join(ancestors) or chr(39) + 'none' + chr(39)}"


def _page(relative: str, csp: str) -> Response[bytes]:
    return Response((STATIC / relative).read_bytes(), media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
                             "Referrer-Policy": "strict-origin-when-cross-origin", "Cache-Control": "no-cache"})


@get("/", include_in_schema=False)
async def home() -> Redirect:
    return Redirect("/console")


@get("/chat", include_in_schema=False)
async def chat_page(runtime: Runtime) -> Response[bytes]:
    return _page("chat/index.html", _chat_csp(runtime.config.server.widget_frame_ancestors))


@get("/console", include_in_schema=False)
async def console_page() -> Response[bytes]:
    return _page("console/index.html", _CONSOLE_CSP)


@get("/widget.js", include_in_schema=False)
async def widget() -> Response[bytes]:
    return Response((STATIC / "widget.js").read_bytes(), media_type="text/javascript; charset=utf-8",
                    headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*",
                             "X-Content-Type-Options": "nosniff"})


ROUTES = [home, chat_page, console_page, widget,
          create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False,
                                     cache_control=CacheControlHeader(no_cache=True), name="static")]
