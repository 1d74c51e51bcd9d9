"""The admin API: decision traces, live model routing, the audit log, visitors' data, sync status.

Every route needs a console session or a bearer token from `appliance token create`; model
routing, the audit log and visitors' data need an admin. The desk's routes live in ``web/desk.py``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import Stream

from appliance.core import arm_history, permissions, routing
from appliance.core.errors import NotFound
from appliance.core.router import RouterSnapshot
from appliance.core.routing import ModelSpec, RoutingTable
from appliance.core.types import Trace
from appliance.desk.privacy import VisitorErasure
from appliance.runtime import Runtime
from appliance.store import Connection, audit, desk, model_history
from appliance.store.routing import TableChange, change_table
from appliance.sync.status import snapshot as sync_snapshot
from appliance.web.auth import Principal, admin, principal


class NameIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class CanaryIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    percent: Annotated[float, msgspec.Meta(ge=0, le=100)]


class FallbackIn(msgspec.Struct, forbid_unknown_fields=True):
    names: list[str]


class ModelsOut(msgspec.Struct, kw_only=True):
    table: RoutingTable
    metrics: RouterSnapshot


class AuditOut(msgspec.Struct, kw_only=True):
    records: list[audit.AuditRecord]


class TracesController(Controller):
    path = "/api/v1/admin/traces"
    dependencies = {"who": Provide(principal)}
    tags = ["desk"]

    @get("/{trace_id:str}", summary="Why the bot said what it said in one turn")
    async def trace(self, trace_id: str, runtime: Runtime, who: Principal) -> Trace:
        who.require("traces.read")

        def read(c: Connection) -> Trace:
            trace = desk.trace(c, trace_id)
            row = desk.row(c, trace.conversation_id)
            if not permissions.may_see(who.role, who.name, row.owner, row.assignee):
                raise NotFound(f"trace {trace_id} not found")
            return trace

        return await runtime.store.read(read)


class ModelsController(Controller):
    """Live model routing: every change is stored, audited and applied without a restart."""

    path = "/api/v1/admin/models"
    dependencies = {"who": Provide(admin)}
    tags = ["admin"]

    @get("/", summary="Models, routing and per-model/arm metrics")
    async def list_models(self, runtime: Runtime, who: Principal) -> ModelsOut:
        return ModelsOut(table=runtime.router.table, metrics=runtime.router.snapshot())

    @get("/series", summary="Each model arm over time, from the stored traces: requests, errors, p50/p99, thumbs-down",
         response_description="per (model, arm): totals over the window and one point per bucket with traffic")
    async def series(
        self, runtime: Runtime, who: Principal,
        since: Annotated[int | None, Parameter(query="since", ge=0,
                                               description="epoch ms; default: an hour before until")] = None,
        until: Annotated[int | None, Parameter(query="until", ge=0, description="epoch ms; default: now")] = None,
        bucket: Annotated[Literal["minute", "hour", "day"], Parameter(query="bucket")] = "minute",
    ) -> arm_history.ModelSeries:
        end = until if until is not None else time.time_ns() // 1_000_000 + 1
        start = since if since is not None else end - 3_600_000
        arm_history.bucket_ms(bucket, start, end)  # a bad window is a 400 before any read
        return await runtime.store.read(
            lambda c: arm_history.series(model_history.turn_samples(c, start, end), start, end, bucket))

    @post("/", status_code=200, summary="Add or replace a model")
    async def add(self, data: ModelSpec, runtime: Runtime, who: Principal) -> RoutingTable:
        return await _change(runtime, who, lambda t: routing.add_model(t, data, replace=True), "add", data.name)

    @delete("/{name:str}", status_code=200, summary="Remove a model")
    async def remove(self, name: str, runtime: Runtime, who: Principal) -> RoutingTable:
        return await _change(runtime, who, lambda t: routing.remove_model(t, name), "remove", name)

    @post("/use", status_code=200, summary="Switch the active model")
    async def use(self, data: NameIn, runtime: Runtime, who: Principal) -> RoutingTable:
        return await _change(runtime, who, lambda t: routing.use(t, data.name), "use", data.name)

    @post("/canary", status_code=200, summary="Send a percentage of conversations to a canary")
    async def canary(self, data: CanaryIn, runtime: Runtime, who: Principal) -> RoutingTable:
        return await _change(runtime, who, lambda t: routing.set_canary(t, data.name, data.percent), "canary",
                             f"{data.name} {data.percent:g}%")

    @post("/promote", status_code=200, summary="Make the canary the active model")
    async def promote(self, runtime: Runtime, who: Principal) -> RoutingTable:
        return await _change(runtime, who, routing.promote, "promote")

    @post("/rollback", status_code=200, summary="Drop the canary, or return to the previous active model")
    async def rollback(self, runtime: Runtime, who: Principal) -> RoutingTable:
        return await _change(runtime, who, routing.rollback, "rollback")

    @post("/fallback", status_code=200, summary="Set the fallback order")
    async def fallback(self, data: FallbackIn, runtime: Runtime, who: Principal) -> RoutingTable:
        return await _change(runtime, who, lambda t: routing.set_fallback(t, data.names), "fallback",
                             " ".join(data.names))


async def _change(runtime: Runtime, who: Principal, change: TableChange, action: str,
                  detail: str = "") -> RoutingTable:
    table = await runtime.store.write(change_table(change, who.actor, action, detail, ip=who.ip))
    await runtime.routing.refresh()
    return table


class AuditController(Controller):
    path = "/api/v1/admin/audit"
    dependencies = {"who": Provide(admin)}
    tags = ["admin"]

    @get("/", summary="Recent audit records, newest first")
    async def records(
        self, runtime: Runtime, who: Principal,
        limit: Annotated[int, Parameter(query="limit", ge=1, le=1000)] = 100,
    ) -> AuditOut:
        return AuditOut(records=await runtime.store.read(lambda c: audit.recent(c, limit)))

    @get("/verify", summary="Check the hash chain of every node's audit log")
    async def verify(self, runtime: Runtime, who: Principal) -> audit.Verification:
        return await runtime.store.read(lambda c: audit.verify(c, runtime.store.audit_head))


class VisitorsController(Controller):
    """A visitor's data exported, or erased here and (by tombstone) on paired nodes; both audited.

    The visitor id is in the desk's conversation view (``visitor.visitor_id``)."""

    path = "/api/v1/admin/visitors"
    dependencies = {"who": Provide(admin)}
    tags = ["admin"]

    @get("/{visitor_id:str}/export", summary="Everything stored about a visitor, as JSON",
         response_description="conversations (profile, messages, rating, thumbs), tickets, uploads' ids and types")
    async def export(self, visitor_id: str, runtime: Runtime, who: Principal) -> Stream:
        pieces = await runtime.privacy.export(visitor_id, actor=who.actor, ip=who.ip)
        name = "".join(c for c in visitor_id if c.isascii() and (c.isalnum() or c in "_-"))[:80] or "visitor"
        return Stream(pieces, media_type="application/json",
                      headers={"Content-Disposition": f'attachment; filename="{name}.json"'})

    @delete("/{visitor_id:str}", status_code=200,
            summary="Erase a visitor: conversations, messages, traces, tickets, uploads, and their logged events")
    async def erase(self, visitor_id: str, runtime: Runtime, who: Principal) -> VisitorErasure:
        erased = await runtime.privacy.erase_visitor(visitor_id, actor=who.actor, ip=who.ip)
        await runtime.switchboard.broadcast_queue()  # an erased conversation may have been waiting
        return erased


class SyncController(Controller):
    path = "/api/v1/admin/sync"
    dependencies = {"who": Provide(admin)}
    tags = ["admin"]

    @get("/", summary="Replication with paired nodes: connected, backlog and lag per origin, rates, last error",
         response_description="what `appliance sync status --json` shows, from the running server")
    async def status(self, runtime: Runtime, who: Principal) -> dict[str, Any]:
        return await sync_snapshot(runtime.sync, running=True)


ROUTES = [TracesController, ModelsController, AuditController, VisitorsController, SyncController]
