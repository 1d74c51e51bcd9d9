"""The admin API of signed webhooks: receivers, the delivery log, a test event.

Admins only; adding, removing and testing are audited. A receiver's secret is in the answer
to adding it and nowhere else (see the README, "Webhooks").
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.di import Provide
from litestar.params import Parameter

from appliance.core import webhooks as wh
from appliance.runtime import Runtime
from appliance.store import Connection, webhooks
from appliance.web.auth import Principal, admin


class WebhookIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    url: Annotated[str, msgspec.Meta(max_length=wh.MAX_URL_CHARS)]
    events: Annotated[list[str], msgspec.Meta(max_length=len(wh.EVENTS))]
    secret: Annotated[str, msgspec.Meta(max_length=256)] = ""  # empty: one is generated


class WebhooksOut(msgspec.Struct, kw_only=True):
    webhooks: list[webhooks.Webhook]
    events: list[str]
    backlog: int


class DeliveriesOut(msgspec.Struct, kw_only=True):
    deliveries: list[webhooks.Delivery]


class TestOut(msgspec.Struct, kw_only=True):
    delivery_id: str


class WebhooksController(Controller):
    path = "/api/v1/admin/webhooks"
    dependencies = {"who": Provide(admin)}
    tags = ["admin"]

    @get("/", summary="Webhook receivers with their events and delivery counts (never their secrets)")
    async def list_webhooks(self, runtime: Runtime, who: Principal) -> WebhooksOut:
        who.require("webhooks.manage")

        def read(c: Connection) -> WebhooksOut:
            return WebhooksOut(webhooks=webhooks.webhooks(c), events=list(wh.EVENTS), backlog=webhooks.backlog(c)[0])

        return await runtime.store.read(read)

    @post("/", status_code=201, summary="Add a receiver; the answer shows its secret, this once")
    async def add(self, data: WebhookIn, runtime: Runtime, who: Principal) -> webhooks.Created:
        who.require("webhooks.manage")
        work = webhooks.add(data.url, data.events, data.secret or wh.new_secret(), actor=who.actor, ip=who.ip)
        return await runtime.store.write(work)

    @delete("/{webhook_id:str}", status_code=200, summary="Remove a receiver; its pending deliveries are cancelled")
    async def remove(self, webhook_id: str, runtime: Runtime, who: Principal) -> webhooks.Webhook:
        who.require("webhooks.manage")
        return await runtime.store.write(webhooks.remove(webhook_id, actor=who.actor, ip=who.ip))

    @post("/{webhook_id:str}/test", status_code=202, summary="Send a webhook.test event to a receiver now")
    async def test(self, webhook_id: str, runtime: Runtime, who: Principal) -> TestOut:
        who.require("webhooks.manage")
        work = webhooks.send_test(webhook_id, actor=who.actor, ip=who.ip, node=runtime.identity.node_id)
        delivery_id = await runtime.store.write(work)
        runtime.webhooks.wake()
        return TestOut(delivery_id=delivery_id)

    @get("/deliveries", summary="The delivery log, newest first, each delivery with every attempt")
    async def deliveries(
        self, runtime: Runtime, who: Principal,
        webhook: Annotated[str | None, Parameter(query="webhook", max_length=wh.MAX_URL_CHARS)] = None,
        limit: Annotated[int, Parameter(query="limit", ge=1, le=500)] = 50,
    ) -> DeliveriesOut:
        who.require("webhooks.manage")

        def read(c: Connection) -> DeliveriesOut:
            hook_id = webhooks.find(c, webhook).id if webhook else None
            return DeliveriesOut(deliveries=webhooks.deliveries(c, hook_id, limit))

        return await runtime.store.read(read)


ROUTES = [WebhooksController]
