"""The litestar application, built from a Runtime (no globals: every test builds its own)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import ResponseHeader
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from appliance.runtime import Runtime
from appliance.web import (
    admin,
    desk,
    health,
    intents,
    knowledge,
    openai_api,
    pages,
    reports,
    session,
    settings,
    team,
    visitor,
    webhooks,
)
from appliance.web.errors import EXCEPTION_HANDLERS
from appliance.web.limits import bounded_bodies


def create_app(runtime: Runtime) -> Litestar:
    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.close()

    return Litestar(
        route_handlers=[*visitor.ROUTES, *session.ROUTES, *desk.ROUTES, *admin.ROUTES, *health.ROUTES, *pages.ROUTES,
                        *webhooks.ROUTES, *openai_api.ROUTES, *reports.ROUTES, *knowledge.ROUTES, *intents.ROUTES,
                        *team.ROUTES, *settings.ROUTES],
        dependencies={"runtime": Provide(lambda: runtime, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=[lifespan],
        middleware=[bounded_bodies(runtime.config.server)],
        request_max_body_size=runtime.config.server.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Appliance API", version="1", path="/schema"),
        signature_types=[Runtime],
        response_headers=[ResponseHeader(name="X-Content-Type-Options", value="nosniff")],
    )
