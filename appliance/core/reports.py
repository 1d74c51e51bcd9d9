"""Reports and conversation exports, as pure computation over what the store read.

Definitions (the README's "Reports" section says the same to a manager):

- a conversation counts on the day it **started**, in the desk's time zone (``desk.timezone``);
- **handed off**: it reached a person, or asked to (a handoff or leave-a-message notice, an agent's
  message, or a human owner now);
- **bot-resolved**: the bot answered at least once and it was never handed off;
- **first response time**: from the first handoff notice to the first agent message after it;
- **resolution time**: from the start to the close, for conversations resolved now;
- **satisfaction (CSAT)**: the share of ratings of 4 or 5 (of 5), with the average score;
- **turn latency** and **fallback rate** count bot turns (their decision traces) on the day of the
  turn: p50/p99 of the whole turn, and the share of turns that went down the degradation chain.

Filters (``ConversationFilter``) are shared by the search, the export and ``appliance export``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Iterable
from typing import Literal
from zoneinfo import ZoneInfo

import msgspec

from appliance.core.errors import InputError
from appliance.core.types import ReplySource

ExportFormat = Literal["csv", "jsonl"]
EXPORT_FORMATS: tuple[str, ...] = ("csv", "jsonl")
# A reply source, or "agent" for a person's reply: what the source filter accepts.
SOURCES: tuple[str, ...] = ReplySource.__args__  # type: ignore[attr-defined]
ANSWERED = ("llm", "local_model", "knowledge_qa", "extractive", "rule", "intent")  # the bot answered
HANDOFF_SOURCES = ("handoff", "leave_message")
MAX_QUERY_CHARS = 200
MAX_DAYS = 366


class ConversationFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which conversations: text in any message, started in [since_ms, until_ms), an agent who
    owns, is assigned or wrote in it, a reply source one of its messages has, resolved or not."""

    q: str = ""
    since_ms: int | None = None
    until_ms: int | None = None
    agent: str = ""
    source: str = ""
    resolved: bool | None = None

    def describe(self) -> str:
        """The filter as an audit detail: ``q="退款" since=2026-12-01 ...`` (only what is set)."""
        parts = [f"q={msgspec.json.encode(self.q).decode()}"] if self.q else []
        for name in ("since_ms", "until_ms"):
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name.removesuffix('_ms')}={iso_ms(value)}")
        parts += [f"agent={self.agent}"] if self.agent else []
        parts += [f"source={self.source}"] if self.source else []
        parts += [f"resolved={'yes' if self.resolved else 'no'}"] if self.resolved is not None else []
        return " ".join(parts)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise InputError(f"unknown time zone {name!r}") from None


def parse_date(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{name} must be a date as YYYY-MM-DD (got {value!r})") from None


def day_start_ms(day: dt.date, tz: ZoneInfo) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=tz).timestamp() * 1000)


def parse_filter(*, q: str | None = None, since: str | None = None, until: str | None = None,
                 agent: str | None = None, source: str | None = None, resolved: str | None = None,
                 timezone: str = "UTC") -> ConversationFilter:
    """The filter from request or command-line values; InputError (400) naming what is wrong.
    ``since`` and ``until`` are dates in ``timezone``, both included."""
    tz = zone(timezone)
    text = (q or "").strip()
    if len(text) > MAX_QUERY_CHARS:
        raise InputError(f"q is at most {MAX_QUERY_CHARS} characters (got {len(text)})")
    since_ms = day_start_ms(parse_date(since, "since"), tz) if since else None
    until_ms = None
    if until:
        end = parse_date(until, "until")
        until_ms = day_start_ms(end + dt.timedelta(days=1), tz)
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        raise InputError(f"since ({since}) must not be after until ({until})")
    wanted = (source or "").strip()
    if wanted and wanted not in SOURCES:
        raise InputError(f"source must be one of {', '.join(SOURCES)} (got {wanted!r})")
    done: bool | None = None
    if resolved not in (None, ""):
        flag = str(resolved).strip().lower()
        if flag in ("true", "yes", "1"):
            done = True
        elif flag in ("false", "no", "0"):
            done = False
        else:
            raise InputError(f"resolved must be true or false (got {resolved!r})")
    name = (agent or "").strip()
    if len(name) > 200:
        raise InputError("agent is at most 200 characters")
    return ConversationFilter(q=text, since_ms=since_ms, until_ms=until_ms, agent=name, source=wanted, resolved=done)


def report_window(since: str | None, until: str | None, timezone: str,
                  today: dt.date) -> tuple[list[dt.date], int, int]:
    """The days of a report (default: the 30 days up to ``today``) and its [since_ms, until_ms)."""
    tz = zone(timezone)
    last = parse_date(until, "until") if until else today
    first = parse_date(since, "since") if since else last - dt.timedelta(days=29)
    if last < first:
        raise InputError(f"since ({first}) must not be after until ({last})")
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise InputError(f"a report covers at most {MAX_DAYS} days (asked for {count})")
    days = [first + dt.timedelta(days=i) for i in range(count)]
    return days, day_start_ms(first, tz), day_start_ms(last + dt.timedelta(days=1), tz)


# -- reports ----------------------------------------------------------------------------------


class ConversationFacts(msgspec.Struct, frozen=True, kw_only=True):
    """One conversation as a report sees it (read by ``store/reports.py``)."""

    started_ms: int
    closed_ms: int | None = None  # resolved now: when
    human_owner: bool = False  # queued or with an agent now
    bot_answers: int = 0
    agent_messages: int = 0
    handoff_ms: int | None = None  # the first handoff / leave-a-message notice
    first_agent_after_handoff_ms: int | None = None
    rating: int | None = None


class TurnFacts(msgspec.Struct, frozen=True, kw_only=True):
    at_ms: int
    total_ms: float
    fell_back: bool


class Figures(msgspec.Struct, kw_only=True):
    """A day's figures (``date``), or the whole window's (``date`` = "total"). Rates are 0..1;
    ``None`` where nothing was there to measure."""

    date: str
    conversations: int = 0
    bot_resolved: int = 0
    bot_resolved_rate: float | None = None
    handed_off: int = 0
    handoff_rate: float | None = None
    resolved: int = 0
    first_response_s_median: float | None = None
    first_response_s_avg: float | None = None
    resolution_s_median: float | None = None
    resolution_s_avg: float | None = None
    ratings: int = 0
    csat: float | None = None
    rating_avg: float | None = None
    turns: int = 0
    turn_p50_ms: float | None = None
    turn_p99_ms: float | None = None
    fallbacks: int = 0
    fallback_rate: float | None = None


class Report(msgspec.Struct, kw_only=True):
    since: str
    until: str
    timezone: str
    totals: Figures
    days: list[Figures]


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (the value below which ``q`` of the values fall)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))], 1)


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    value = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return round(value, 1)


def _avg(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class _Day:
    def __init__(self) -> None:
        self.conversations = self.bot_resolved = self.handed_off = self.resolved = 0
        self.first_response: list[float] = []
        self.resolution: list[float] = []
        self.ratings: list[int] = []
        self.latencies: list[float] = []
        self.fallbacks = 0

    def add_conversation(self, c: ConversationFacts) -> None:
        self.conversations += 1
        handed = c.handoff_ms is not None or c.agent_messages > 0 or c.human_owner
        self.handed_off += handed
        self.bot_resolved += (not handed) and c.bot_answers > 0
        if c.closed_ms is not None:
            self.resolved += 1
            self.resolution.append(max(0, c.closed_ms - c.started_ms) / 1000)
        if c.handoff_ms is not None and c.first_agent_after_handoff_ms is not None:
            self.first_response.append(max(0, c.first_agent_after_handoff_ms - c.handoff_ms) / 1000)
        if c.rating is not None:
            self.ratings.append(c.rating)

    def add_turn(self, t: TurnFacts) -> None:
        self.latencies.append(t.total_ms)
        self.fallbacks += t.fell_back

    def merge(self, other: _Day) -> None:
        for name in ("conversations", "bot_resolved", "handed_off", "resolved", "fallbacks"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.first_response += other.first_response
        self.resolution += other.resolution
        self.ratings += other.ratings
        self.latencies += other.latencies

    def figures(self, date: str) -> Figures:
        satisfied = sum(1 for r in self.ratings if r >= 4)
        return Figures(
            date=date, conversations=self.conversations, bot_resolved=self.bot_resolved,
            bot_resolved_rate=_rate(self.bot_resolved, self.conversations), handed_off=self.handed_off,
            handoff_rate=_rate(self.handed_off, self.conversations), resolved=self.resolved,
            first_response_s_median=_median(self.first_response), first_response_s_avg=_avg(self.first_response),
            resolution_s_median=_median(self.resolution), resolution_s_avg=_avg(self.resolution),
            ratings=len(self.ratings), csat=_rate(satisfied, len(self.ratings)),
            rating_avg=_avg([float(r) for r in self.ratings]), turns=len(self.latencies),
            turn_p50_ms=percentile(self.latencies, 0.5), turn_p99_ms=percentile(self.latencies, 0.99),
            fallbacks=self.fallbacks, fallback_rate=_rate(self.fallbacks, len(self.latencies)),
        )


def report(days: list[dt.date], timezone: str, conversations: Iterable[ConversationFacts],
           turns: Iterable[TurnFacts]) -> Report:
    """Figures per day of ``days`` (in ``timezone``) and over all of them."""
    tz = zone(timezone)
    by_day = {day: _Day() for day in days}

    def bucket(at_ms: int) -> _Day | None:
        return by_day.get(dt.datetime.fromtimestamp(at_ms / 1000, tz).date())

    for c in conversations:
        found = bucket(c.started_ms)
        if found is not None:
            found.add_conversation(c)
    for t in turns:
        found = bucket(t.at_ms)
        if found is not None:
            found.add_turn(t)
    total = _Day()
    for day in by_day.values():
        total.merge(day)
    return Report(since=days[0].isoformat(), until=days[-1].isoformat(), timezone=timezone,
                  totals=total.figures("total"), days=[by_day[d].figures(d.isoformat()) for d in days])


REPORT_COLUMNS = tuple(f for f in Figures.__struct_fields__)


def report_csv(found: Report) -> str:
    """The report as CSV: a header, one row per day, then the totals row (UTF-8 with a BOM)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(REPORT_COLUMNS)
    for row in [*found.days, found.totals]:
        writer.writerow(["" if getattr(row, name) is None else getattr(row, name) for name in REPORT_COLUMNS])
    return "\ufeff" + out.getvalue()


# -- exports ----------------------------------------------------------------------------------


class ExportedMessage(msgspec.Struct, kw_only=True):
    """One line of an export: a message with its conversation's columns."""

    conversation_id: str
    conversation_started_at: str
    conversation_status: str
    owner: str
    assignee: str
    language: str
    rating: int | None
    visitor_id: str
    message_id: str
    sent_at: str
    role: str
    author: str
    source: str
    trace_id: str
    text: str


EXPORT_COLUMNS = tuple(ExportedMessage.__struct_fields__)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_json = msgspec.json.Encoder()


def iso_ms(at_ms: int) -> str:
    return dt.datetime.fromtimestamp(at_ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cell(value: object) -> str:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading apostrophe."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export_header(fmt: ExportFormat) -> bytes:
    if fmt == "jsonl":
        return b""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(EXPORT_COLUMNS)
    return ("\ufeff" + out.getvalue()).encode()


def export_chunk(rows: Iterable[ExportedMessage], fmt: ExportFormat) -> bytes:
    """Rows as CSV lines (RFC 4180 quoting, CRLF) or JSON lines; UTF-8."""
    if fmt == "jsonl":
        return b"".join(_json.encode(row) + b"\n" for row in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        writer.writerow([_cell(getattr(row, name)) for name in EXPORT_COLUMNS])
    return out.getvalue().encode()


def export_format(value: str) -> ExportFormat:
    if value not in EXPORT_FORMATS:
        raise InputError(f"format must be csv or jsonl (got {value!r})")
    return "csv" if value == "csv" else "jsonl"

