"""The Settings page's hours and look as stored: checked with the config's parsers, layered over
the config, replicated to a peer (the same ``apply``) with the newest change winning per part,
and adopted by the peer's switchboard as the batch arrives."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.core import events as ev
from appliance.core.config import DeskConfig
from appliance.core.desk_settings import HoursSettings, WidgetLook, clean_hours, clean_look
from appliance.core.errors import InputError
from appliance.desk.hub import Hub
from appliance.desk.switchboard import Switchboard
from appliance.store import Store, desk_settings
from tests.store.test_privacy_tombstones import ship

CONFIG = DeskConfig(timezone="Europe/Paris", hours=["mon-fri 09:00-18:00"])
FRIDAY_NOON_UTC = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.UTC)
CLOSED_FRIDAYS = HoursSettings(timezone="Asia/Shanghai", hours=["sat-sun 10:00-16:00"])


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    a, b = Store.open(tmp_path / "a.db", "node-a"), Store.open(tmp_path / "b.db", "node-b")
    yield a, b
    a.close()
    b.close()


def change(store: Store, hours: HoursSettings | None = None, look: WidgetLook | None = None) -> None:
    store.write_sync(desk_settings.change(CONFIG, hours, look, actor="admin:admin", ip="127.0.0.1"))


def test_each_part_replicates_and_the_newest_change_of_a_part_wins(stores: tuple[Store, Store]) -> None:
    a, b = stores
    assert a.read_sync(lambda c: desk_settings.in_force(c, CONFIG)).hours_from == "config"
    change(a, hours=CLOSED_FRIDAYS)
    change(b, look=WidgetLook(title="Acme", color="#e4572e"))  # at the same time, the other part
    ship(a, b)
    ship(b, a)
    for store in (a, b):
        shown = store.read_sync(lambda c: desk_settings.in_force(c, CONFIG))
        assert (shown.desk, shown.widget.title, shown.hours_from) == (CLOSED_FRIDAYS, "Acme", "console")

    first, second = HoursSettings(hours=["mon 08:00-12:00"]), HoursSettings(hours=["tue 08:00-12:00"])
    change(a, hours=first)
    change(b, hours=second)  # later: it wins at both sites, whichever arrives last
    ship(b, a)
    ship(a, b)
    assert [s.read_sync(desk_settings.stored_hours) for s in (a, b)] == [second, second]

    audit = a.read_sync(lambda c: c.execute("SELECT action, target FROM audit ORDER BY hlc").fetchall())
    assert audit == [("settings.change", "desk.hours"), ("settings.change", "widget.look"),
                     ("settings.change", "desk.hours"), ("settings.change", "desk.hours")]


async def test_the_switchboard_adopts_hours_replicated_to_it(stores: tuple[Store, Store]) -> None:
    a, b = stores
    board = Switchboard(b, Hub(), CONFIG, now=lambda: FRIDAY_NOON_UTC)
    await board.load_hours()
    assert board.open_now()  # 13:00 on a Friday in Paris
    change(a, hours=CLOSED_FRIDAYS)
    ship(a, b)
    events = b.read_sync(lambda c: [ev.Event(*r) for r in c.execute(
        "SELECT origin, seq, hlc, type, payload FROM events WHERE origin = 'node-a'").fetchall()])
    await board.replicated(events)
    assert not board.open_now()


@pytest.mark.parametrize(("hours", "message"), [
    (HoursSettings(hours=["weekdays 9-5"]), "'desk.hours': cannot read 'weekdays 9-5'"),
    (HoursSettings(timezone="Europe/Atlantis"), "'desk.timezone': unknown time zone 'Europe/Atlantis'"),
    (HoursSettings(holidays=["Christmas"]), "'desk.holidays': 'Christmas' is not a date"),
])
def test_hours_are_read_by_the_config_parser(hours: HoursSettings, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        clean_hours(hours)


def test_the_look_is_trimmed_and_a_colour_must_be_hex() -> None:
    look = clean_look(WidgetLook(title="  Acme   Help ", color=" #E4572E ", greeting_zh=" 您好 "))
    assert (look.title, look.color, look.greeting_zh) == ("Acme Help", "#e4572e", "您好")
    with pytest.raises(InputError, match=re.escape("'widget.color': 'blue' is not a colour")):
        clean_look(WidgetLook(color="blue"))
