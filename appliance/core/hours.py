"""Business hours: a weekly schedule in a time zone, minus holidays. Pure; the clock is passed in.

Schedule lines look like ``"mon-fri 09:00-18:00"`` or ``"sat 10:00-14:00"``; an empty schedule
means always open. Holidays are ISO dates (``"2026-12-25"``), closed all day.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.core.errors import ConfigError

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_LINE = re.compile(r"^\s*([a-z]{3})(?:\s*-\s*([a-z]{3}))?\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class BusinessHours:
    def __init__(self, schedule: list[str], timezone: str = "UTC", holidays: list[str] | None = None) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America" is a folder of zones
            raise ConfigError(f"key 'desk.timezone': unknown time zone {timezone!r}") from None
        self.windows: dict[int, list[tuple[int, int]]] = {}
        for line in schedule:
            match = _LINE.match(line.lower())
            if not match or match.group(1) not in DAYS or (match.group(2) and match.group(2) not in DAYS):
                raise ConfigError(f"key 'desk.hours': cannot read {line!r} (write e.g. \"mon-fri 09:00-18:00\")")
            first = DAYS.index(match.group(1))
            last = DAYS.index(match.group(2)) if match.group(2) else first
            if int(match.group(4)) > 59 or int(match.group(6)) > 59:
                raise ConfigError(f"key 'desk.hours': {line!r} has minutes past 59")
            start = int(match.group(3)) * 60 + int(match.group(4))
            end = int(match.group(5)) * 60 + int(match.group(6))
            if not (0 <= start < end <= 24 * 60):
                raise ConfigError(f"key 'desk.hours': {line!r} must end after it starts, within one day")
            day = first
            while True:
                self.windows.setdefault(day, []).append((start, end))
                if day == last:
                    break
                day = (day + 1) % 7
        self.holidays: set[dt.date] = set()
        for text in holidays or []:
            try:
                self.holidays.add(dt.date.fromisoformat(text))
            except ValueError:
                raise ConfigError(f"key 'desk.holidays': {text!r} is not a date like 2026-12-25") from None
        self.always = not schedule

    def open_at(self, when: dt.datetime) -> bool:
        local = when.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        if self.always:
            return True
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.windows.get(local.weekday(), []))
