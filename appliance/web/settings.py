"""The Settings page's API: business hours and the widget's look (admins), and the look for the
widget and the chat page (anyone; no secrets in it).

``PUT`` takes either part or both, checks them with the config's parsers (400 naming the key)
and stores the parts that changed; new hours decide the next "talk to a person" at once.
"""

from __future__ import annotations

import msgspec
from litestar import Controller, Response, get, put
from litestar.di import Provide

from appliance.core.desk_settings import HoursSettings, WidgetLook, clean_hours, clean_look
from appliance.runtime import Runtime
from appliance.store import Connection, desk_settings
from appliance.web.auth import Principal, admin

LOOK_MAX_AGE_S = 60  # how long a browser may keep the look before asking again


class SettingsIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    desk: HoursSettings | None = None
    widget: WidgetLook | None = None


class SettingsController(Controller):
    path = "/api/v1/admin/settings"
    dependencies = {"who": Provide(admin)}
    tags = ["admin"]

    @get("/", summary="The business hours and widget look in force, and whether the hours are the config's")
    async def show(self, runtime: Runtime, who: Principal) -> desk_settings.InForce:
        who.require("settings.manage")
        config = runtime.config.desk
        return await runtime.store.read(lambda c: desk_settings.in_force(c, config))

    @put("/", summary="Change the business hours, the widget look, or both; live at once")
    async def change(self, data: SettingsIn, runtime: Runtime, who: Principal) -> desk_settings.InForce:
        who.require("settings.manage")
        hours = clean_hours(data.desk) if data.desk is not None else None
        look = clean_look(data.widget) if data.widget is not None else None
        work = desk_settings.change(runtime.config.desk, hours, look, actor=who.actor, ip=who.ip)
        changed = await runtime.store.write(work)
        if hours is not None:
            await runtime.switchboard.hours_changed()
        return changed


@get("/api/v1/widget/settings", summary="The widget's look for the embed and the chat page (public, cacheable)")
async def widget_settings(runtime: Runtime) -> Response[WidgetLook]:
    def read(c: Connection) -> WidgetLook:
        return desk_settings.look(c)

    return Response(await runtime.store.read(read), headers={
        "Cache-Control": f"public, max-age={LOOK_MAX_AGE_S}", "Access-Control-Allow-Origin": "*"})


ROUTES = [SettingsController, widget_settings]
