"""The agent/admin API: traces, the human queue, live model routing, the audit log.

Every route needs a bearer token from `appliance token create`; model routing needs an admin.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import Provide
from litestar.params import Parameter

from appliance import audit, desk
from appliance.conversations import ConversationView, MessageView
from appliance.core import routing
from appliance.core.router import RouterSnapshot
from appliance.core.routing import ModelSpec, RoutingTable
from appliance.core.types import Trace
from appliance.routing_store import TableChange, change_table
from appliance.runtime import Runtime
from appliance.web.auth import Principal, admin, principal


class ReplyIn(msgspec.Struct, forbid_unknown_fields=True):
    text: str


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    to: Annotated[str, msgspec.Meta(description="agent name, or 'queue' / 'bot'")]


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


class QueueOut(msgspec.Struct, kw_only=True):
    conversations: list[ConversationView]


class AuditOut(msgspec.Struct, kw_only=True):
    records: list[audit.AuditRecord]


class ConversationsController(Controller):
    path = "/api/v1/admin"
    dependencies = {"who": Provide(principal)}
    tags = ["agent"]

    @get("/traces/{trace_id:str}", summary="Why the bot said what it said in one turn")
    async def trace(self, trace_id: str, runtime: Runtime, who: Principal) -> Trace:
        return await runtime.store.read(lambda c: desk.trace(c, trace_id))

    @get("/conversations", summary="The human queue (or conversations with a given owner)")
    async def queue(
        self, runtime: Runtime, who: Principal,
        owner: Annotated[str | None, Parameter(query="owner", max_length=200)] = None,
    ) -> QueueOut:
        return QueueOut(conversations=await runtime.desk.queue(owner))

    @get("/conversations/{conversation_id:str}", summary="A conversation with its messages")
    async def detail(self, conversation_id: str, runtime: Runtime, who: Principal) -> desk.ConversationDetail:
        return await runtime.desk.detail(conversation_id)

    @post("/conversations/{conversation_id:str}/take", status_code=200, summary="Take over from the bot")
    async def take(self, conversation_id: str, runtime: Runtime, who: Principal) -> ConversationView:
        return await runtime.desk.take(conversation_id, f"agent:{who.name}")

    @post("/conversations/{conversation_id:str}/reply", status_code=200, summary="Reply as the owning agent")
    async def reply(self, conversation_id: str, data: ReplyIn, runtime: Runtime, who: Principal) -> MessageView:
        return await runtime.desk.reply(conversation_id, f"agent:{who.name}", data.text)

    @post("/conversations/{conversation_id:str}/handback", status_code=200, summary="Hand back to the bot")
    async def hand_back(self, conversation_id: str, runtime: Runtime, who: Principal) -> ConversationView:
        return await runtime.desk.hand_back(conversation_id, who.actor)

    @post("/conversations/{conversation_id:str}/transfer", status_code=200, summary="Transfer to an agent")
    async def transfer(
        self, conversation_id: str, data: TransferIn, runtime: Runtime, who: Principal
    ) -> ConversationView:
        return await runtime.desk.transfer(conversation_id, who.actor, data.to)

    @post("/conversations/{conversation_id:str}/close", status_code=200, summary="Close a conversation")
    async def close(self, conversation_id: str, runtime: Runtime, who: Principal) -> ConversationView:
        return await runtime.desk.close(conversation_id, who.actor)


class ModelsController(Controller):
    """Live model routing: every change is stored, audited and applied without a restart."""

    path = "/api/v1/admin/models"
    dependencies = {"who": Provide(admin)}
    tags = ["admin"]

    @get("/", summary="Models, routing and per-model/arm metrics")
    async def list_models(self, runtime: Runtime, who: Principal) -> ModelsOut:
        return ModelsOut(table=runtime.router.table, metrics=runtime.router.snapshot())

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
    table = await runtime.store.write(change_table(change, who.actor, action, detail))
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
        return await runtime.store.read(audit.verify)


ROUTES = [ConversationsController, ModelsController, AuditController]
