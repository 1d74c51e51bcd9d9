"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import msgspec
from litestar import MediaType, Response, get

from appliance.metrics import CONTENT_TYPE
from appliance.runtime import Runtime


class Health(msgspec.Struct, kw_only=True):
    status: str
    node_id: str
    node_name: str


class Readiness(msgspec.Struct, kw_only=True):
    ready: bool
    detail: str


@get("/healthz", summary="Liveness: the process answers", include_in_schema=True)
async def healthz(runtime: Runtime) -> Health:
    return Health(status="ok", node_id=runtime.identity.node_id, node_name=runtime.config.node.name)


@get("/readyz", summary="Readiness: store and models are open")
async def readyz(runtime: Runtime) -> Response[Readiness]:
    if runtime.ready:
        return Response(Readiness(ready=True, detail="ready"))
    detail = runtime.load_error or "loading models"
    return Response(Readiness(ready=False, detail=detail), status_code=503)


@get("/metrics", summary="Prometheus metrics (prometheus_client's text format)", media_type=MediaType.TEXT)
async def metrics(runtime: Runtime) -> Response[bytes]:
    return Response(await runtime.metrics.scrape(runtime.store), media_type=CONTENT_TYPE)


ROUTES = [healthz, readyz, metrics]
