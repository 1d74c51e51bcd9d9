"""What admins set on the console's Settings page: the business hours and the widget's look.

Each part is stored as a last-writer-wins setting (``desk.hours``, ``widget.look``; see
:mod:`appliance.store.desk_settings`), replicated like every event. Stored hours replace the
config's ``[desk]`` timezone, hours and holidays as a whole; a node with none uses the config's.
The look has no config: unset fields fall back to the widget's built-in defaults, and the embed
attributes (``data-title``, ``data-color``, ``data-position``) win over it on the page that sets
them. Hours are read by :class:`~appliance.core.hours.BusinessHours`, the parser of the config.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec

from appliance.core.config import DeskConfig
from appliance.core.errors import ConfigError, InputError
from appliance.core.hours import BusinessHours

MAX_TITLE_CHARS = 80
MAX_GREETING_CHARS = 500
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


class HoursSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The same three keys as the config's ``[desk]`` section, with the same meaning."""

    timezone: Annotated[str, msgspec.Meta(max_length=64)] = "UTC"
    hours: Annotated[list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=50)] = \
        msgspec.field(default_factory=list)
    holidays: Annotated[list[Annotated[str, msgspec.Meta(max_length=16)]], msgspec.Meta(max_length=400)] = \
        msgspec.field(default_factory=list)


class WidgetLook(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Empty text means the built-in one (the title "Chat with us", the welcome line, the accent)."""

    title: str = ""
    color: str = ""
    greeting_en: str = ""
    greeting_zh: str = ""
    position: Literal["left", "right"] = "right"


def hours_of(config: DeskConfig) -> HoursSettings:
    return HoursSettings(timezone=config.timezone, hours=list(config.hours), holidays=list(config.holidays))


def business_hours(hours: HoursSettings) -> BusinessHours:
    """Parse as the config is parsed; a bad line, zone or date is an ``InputError`` naming the key
    (``desk.hours``, ``desk.timezone``, ``desk.holidays``)."""
    try:
        return BusinessHours(hours.hours, hours.timezone, hours.holidays)
    except ConfigError as exc:
        raise InputError(str(exc).removeprefix("key ")) from None


def clean_hours(hours: HoursSettings) -> HoursSettings:
    """The lines and dates without surrounding spaces or blanks, checked by :func:`business_hours`."""
    cleaned = HoursSettings(timezone=hours.timezone.strip(), hours=[h.strip() for h in hours.hours if h.strip()],
                            holidays=[d.strip() for d in hours.holidays if d.strip()])
    business_hours(cleaned)
    return cleaned


def _text(value: str, field: str, limit: int) -> str:
    value = value.strip()
    if len(value) > limit:
        raise InputError(f"'widget.{field}': at most {limit} characters (got {len(value)})")
    return value


def clean_look(look: WidgetLook) -> WidgetLook:
    color = look.color.strip()
    if color and not _COLOUR.match(color):
        raise InputError(f"'widget.color': {look.color!r} is not a colour like #0b5cff")
    return WidgetLook(title=" ".join(_text(look.title, "title", MAX_TITLE_CHARS).split()), color=color.lower(),
                      greeting_en=_text(look.greeting_en, "greeting_en", MAX_GREETING_CHARS),
                      greeting_zh=_text(look.greeting_zh, "greeting_zh", MAX_GREETING_CHARS),
                      position=look.position)
