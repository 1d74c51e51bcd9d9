"""The Settings page's business hours and widget look (see :mod:`appliance.core.desk_settings`).

Two last-writer-wins settings, ``desk.hours`` and ``widget.look``, each a ``SettingChanged``
event with the part as JSON, so an admin changing the hours at one site and another the colour
at another both keep their change. A write stores only the parts that differ from those in
force, each with an audit record of the part before and after.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from appliance.core import events as ev
from appliance.core.config import DeskConfig
from appliance.core.desk_settings import HoursSettings, WidgetLook, hours_of
from appliance.store import Connection, WriteTxn

HOURS_KEY = "desk.hours"
LOOK_KEY = "widget.look"
_hours = msgspec.json.Decoder(HoursSettings)
_look = msgspec.json.Decoder(WidgetLook)


class InForce(msgspec.Struct, frozen=True, kw_only=True):
    desk: HoursSettings
    widget: WidgetLook
    hours_from: str  # "config" or "console"


def stored_hours(conn: Connection) -> HoursSettings | None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (HOURS_KEY,)).fetchone()
    return _hours.decode(row[0]) if row else None


def look(conn: Connection) -> WidgetLook:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (LOOK_KEY,)).fetchone()
    return _look.decode(row[0]) if row else WidgetLook()


def in_force(conn: Connection, config: DeskConfig) -> InForce:
    hours = stored_hours(conn)
    return InForce(desk=hours or hours_of(config), widget=look(conn), hours_from="console" if hours else "config")


def change(config: DeskConfig, hours: HoursSettings | None, widget: WidgetLook | None, *, actor: str, ip: str
           ) -> Callable[[WriteTxn], InForce]:
    """A write: store the parts given (already cleaned) that differ from those in force; hours
    equal to the config's stay the config's (a later config edit still applies)."""

    def work(txn: WriteTxn) -> InForce:
        current = in_force(txn.conn, config)
        for key, before, after in ((HOURS_KEY, current.desk, hours), (LOOK_KEY, current.widget, widget)):
            if after is None or after == before:
                continue
            encoded = msgspec.json.encode(after)
            txn.append(ev.SettingChanged(key=key, value=encoded))
            txn.append(ev.AuditRecorded(actor=actor, action="settings.change", target=key, ip=ip,
                                        before=msgspec.json.encode(before).decode(), after=encoded.decode()))
        return in_force(txn.conn, config)

    return work
