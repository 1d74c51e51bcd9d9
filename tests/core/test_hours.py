"""Business hours (``core/hours.py``): a weekly schedule in a time zone, minus holidays; a line
that cannot be read is a ConfigError naming the configuration key."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from appliance.core.errors import ConfigError
from appliance.core.hours import BusinessHours

UTC = dt.UTC
MONDAY = dt.date(2026, 11, 30)  # a Monday


def at(day_offset: int, hour: int, minute: int = 0, zone: str = "UTC", base: dt.date = MONDAY) -> dt.datetime:
    day = base + dt.timedelta(days=day_offset)
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))


def test_dates_used_here_are_the_weekdays_they_claim() -> None:
    assert MONDAY.strftime("%a") == "Mon"


def test_an_empty_schedule_is_always_open() -> None:
    hours = BusinessHours([])
    for offset in range(7):
        for hour in (0, 3, 12, 23):
            assert hours.open_at(at(offset, hour, 59))


def test_weekdays_nine_to_six_with_an_exclusive_end() -> None:
    hours = BusinessHours(["mon-fri 09:00-18:00"])
    for offset in range(5):  # Monday to Friday
        assert not hours.open_at(at(offset, 8, 59))
        assert hours.open_at(at(offset, 9, 0))
        assert hours.open_at(at(offset, 17, 59))
        assert not hours.open_at(at(offset, 18, 0))
    for offset in (5, 6):  # the weekend
        assert not hours.open_at(at(offset, 12, 0))


def test_several_lines_and_single_days() -> None:
    hours = BusinessHours(["Mon 09:00-12:00", "mon 13:00-17:30", "sat 10:00-14:00"])
    assert hours.open_at(at(0, 11, 59)) and not hours.open_at(at(0, 12, 30)) and hours.open_at(at(0, 13, 0))
    assert hours.open_at(at(0, 17, 29)) and not hours.open_at(at(0, 17, 30))
    assert not hours.open_at(at(1, 10, 0))  # Tuesday: no line
    assert hours.open_at(at(5, 10, 0)) and not hours.open_at(at(5, 14, 0))  # Saturday
    assert not hours.open_at(at(6, 12, 0))  # Sunday


def test_a_range_that_wraps_round_the_week() -> None:
    hours = BusinessHours(["fri-mon 10:00-16:00"])
    assert [hours.open_at(at(offset, 12)) for offset in range(7)] == [True, False, False, False, True, True, True]


def test_a_whole_day_and_spaces_around_the_dash() -> None:
    hours = BusinessHours(["mon - sun 00:00-24:00"])
    assert all(hours.open_at(at(offset, hour, 59)) for offset in range(7) for hour in (0, 23))


def test_the_schedule_is_read_in_its_time_zone() -> None:
    shanghai = BusinessHours(["mon-fri 09:00-18:00"], timezone="Asia/Shanghai")  # UTC+8, no DST
    assert not shanghai.open_at(dt.datetime(2026, 11, 30, 0, 59, tzinfo=UTC))  # 08:59 in Shanghai
    assert shanghai.open_at(dt.datetime(2026, 11, 30, 1, 0, tzinfo=UTC))  # 09:00
    assert not shanghai.open_at(dt.datetime(2026, 11, 30, 10, 0, tzinfo=UTC))  # 18:00
    # Sunday 23:30 UTC is Monday 07:30 in Shanghai; Friday 20:00 UTC is Saturday 04:00 there.
    assert not shanghai.open_at(dt.datetime(2026, 11, 29, 23, 30, tzinfo=UTC))
    assert shanghai.open_at(dt.datetime(2026, 11, 30, 1, 30, tzinfo=UTC))
    assert not shanghai.open_at(dt.datetime(2026, 12, 4, 20, 0, tzinfo=UTC))
    # The same instant given in another zone is the same answer.
    instant = dt.datetime(2026, 11, 30, 1, 0, tzinfo=UTC)
    assert shanghai.open_at(instant.astimezone(ZoneInfo("America/New_York")))


def test_daylight_saving_time_moves_the_hours_in_utc() -> None:
    london = BusinessHours(["mon-fri 09:00-17:00"], timezone="Europe/London")
    summer = dt.date(2026, 7, 6)  # a Monday, BST (UTC+1)
    winter = dt.date(2026, 1, 5)  # a Monday, GMT
    assert summer.strftime("%a") == winter.strftime("%a") == "Mon"
    assert london.open_at(dt.datetime(2026, 7, 6, 8, 0, tzinfo=UTC))  # 09:00 BST
    assert not london.open_at(dt.datetime(2026, 7, 6, 16, 0, tzinfo=UTC))  # 17:00 BST
    assert not london.open_at(dt.datetime(2026, 1, 5, 8, 0, tzinfo=UTC))  # 08:00 GMT
    assert london.open_at(dt.datetime(2026, 1, 5, 16, 0, tzinfo=UTC))  # 16:00 GMT


def test_holidays_are_closed_all_day_in_the_local_date() -> None:
    hours = BusinessHours(["mon-sun 00:00-24:00"], timezone="Asia/Shanghai", holidays=["2026-12-25"])
    # 2026-12-24 16:30 UTC is already the 25th in Shanghai.
    assert not hours.open_at(dt.datetime(2026, 12, 24, 16, 30, tzinfo=UTC))
    assert hours.open_at(dt.datetime(2026, 12, 24, 15, 30, tzinfo=UTC))  # the 24th, 23:30 there
    assert not hours.open_at(dt.datetime(2026, 12, 25, 15, 59, tzinfo=UTC))  # the 25th, 23:59 there
    assert hours.open_at(dt.datetime(2026, 12, 25, 16, 0, tzinfo=UTC))  # the 26th
    # A holiday closes even a node that is otherwise always open.
    always = BusinessHours([], holidays=["2026-12-25", "2027-01-01"])
    assert not always.open_at(dt.datetime(2026, 12, 25, 12, 0, tzinfo=UTC))
    assert not always.open_at(dt.datetime(2027, 1, 1, 0, 0, tzinfo=UTC))
    assert always.open_at(dt.datetime(2026, 12, 26, 12, 0, tzinfo=UTC))


@pytest.mark.parametrize("line", [
    "monday 09:00-18:00", "mon-fri 9-18", "mon-fri", "09:00-18:00", "xyz 09:00-10:00", "mon-xyz 09:00-10:00",
    "mon 18:00-09:00", "mon 09:00-09:00", "mon 09:00-25:00", "mon 09:00-24:01", "mon 9:60-10:00", "",
    "mon 08:75-10:00", "mon 08:00-09:99",
])
def test_a_line_that_cannot_be_read_names_desk_hours(line: str) -> None:
    with pytest.raises(ConfigError) as error:
        BusinessHours(["mon-fri 09:00-18:00", line])
    message = str(error.value)
    assert "desk.hours" in message and repr(line) in message, message


@pytest.mark.parametrize("holiday", ["2026-13-01", "25/12/2026", "christmas", "2026-02-30"])
def test_a_holiday_that_is_not_a_date_names_desk_holidays(holiday: str) -> None:
    with pytest.raises(ConfigError) as error:
        BusinessHours([], holidays=[holiday])
    assert "desk.holidays" in str(error.value) and holiday in str(error.value), str(error.value)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "UTC+8", "", "../etc/passwd"])
def test_an_unknown_time_zone_names_desk_timezone(zone: str) -> None:
    with pytest.raises(ConfigError) as error:
        BusinessHours(["mon-fri 09:00-18:00"], timezone=zone)
    assert "desk.timezone" in str(error.value), str(error.value)
