"""Reports, the conversation search and the export (``/api/v1/admin/reports``,
``/api/v1/admin/conversations``): supervisors and admins (``reports.read``).

Dates are days in the desk's time zone (``desk.timezone``). An export is audited
(``conversations.export``, with its filters) and streamed: rows are read on a private read-only
connection in chunks of :data:`EXPORT_CHUNK` and sent as they are encoded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Literal

from litestar import Controller, Response, get
from litestar.di import Provide
from litestar.params import Parameter
from litestar.response import Stream

from appliance.core import events as ev
from appliance.core import reports
from appliance.runtime import Runtime
from appliance.store import Connection
from appliance.store import reports as facts
from appliance.store.conversation_search import ExportCursor, SearchResult, search
from appliance.web.auth import Principal, principal

EXPORT_CHUNK = 1000
_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}

Day = Annotated[str | None, Parameter(max_length=32, description="a day, YYYY-MM-DD, in the desk's time zone")]


class ReportsController(Controller):
    path = "/api/v1/admin/reports"
    dependencies = {"who": Provide(principal)}
    tags = ["reports"]

    @get("/", summary="Conversations, bot-resolved and handoff rates, response and resolution times, CSAT, turn"
         " latency and fallbacks, per day", response_description="per day and in total; format=csv downloads it")
    async def report(
        self, runtime: Runtime, who: Principal,
        since: Annotated[Day, Parameter(query="since")] = None,
        until: Annotated[Day, Parameter(query="until")] = None,
        format_: Annotated[Literal["json", "csv"], Parameter(query="format")] = "json",
    ) -> Response[object]:
        who.require("reports.read")
        timezone = runtime.config.desk.timezone
        today = dt.datetime.now(reports.zone(timezone)).date()
        days, start, end = reports.report_window(since, until, timezone, today)

        def read(c: Connection) -> reports.Report:
            return reports.report(days, timezone, facts.conversation_facts(c, start, end),
                                  facts.turn_facts(c, start, end))

        found = await runtime.store.read(read)
        if format_ == "csv":
            name = f"report-{found.since}-{found.until}.csv"
            return Response(reports.report_csv(found), media_type=_MEDIA["csv"],
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return Response(found)


class ConversationsController(Controller):
    path = "/api/v1/admin/conversations"
    dependencies = {"who": Provide(principal)}
    tags = ["reports"]

    @get("/", summary="Search conversations: text in any message (English or Chinese), date, agent, reply"
         " source, resolved or not; newest activity first")
    async def find(
        self, runtime: Runtime, who: Principal,
        q: Annotated[str | None, Parameter(query="q", max_length=reports.MAX_QUERY_CHARS * 4)] = None,
        since: Annotated[Day, Parameter(query="since")] = None,
        until: Annotated[Day, Parameter(query="until")] = None,
        agent: Annotated[str | None, Parameter(query="agent", max_length=200)] = None,
        source: Annotated[str | None, Parameter(query="source", max_length=32)] = None,
        resolved: Annotated[str | None, Parameter(query="resolved", max_length=8)] = None,
        limit: Annotated[int, Parameter(query="limit", ge=1, le=200)] = 50,
        before: Annotated[int | None, Parameter(query="before", ge=0, le=2**63 - 1)] = None,
    ) -> SearchResult:
        who.require("reports.read")
        wanted = reports.parse_filter(q=q, since=since, until=until, agent=agent, source=source, resolved=resolved,
                                      timezone=runtime.config.desk.timezone)
        return await runtime.store.read(lambda c: search(c, wanted, limit=limit, before=before))

    @get("/export", summary="Export the messages of the conversations a search finds, streamed as CSV or JSON"
         " lines", response_description="one row per message with its conversation's columns (README, Export)")
    async def export(
        self, runtime: Runtime, who: Principal,
        format_: Annotated[Literal["csv", "jsonl"], Parameter(query="format")] = "csv",
        q: Annotated[str | None, Parameter(query="q", max_length=reports.MAX_QUERY_CHARS * 4)] = None,
        since: Annotated[Day, Parameter(query="since")] = None,
        until: Annotated[Day, Parameter(query="until")] = None,
        agent: Annotated[str | None, Parameter(query="agent", max_length=200)] = None,
        source: Annotated[str | None, Parameter(query="source", max_length=32)] = None,
        resolved: Annotated[str | None, Parameter(query="resolved", max_length=8)] = None,
    ) -> Stream:
        who.require("reports.read")
        wanted = reports.parse_filter(q=q, since=since, until=until, agent=agent, source=source, resolved=resolved,
                                      timezone=runtime.config.desk.timezone)
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export")
        loop = asyncio.get_running_loop()
        try:
            cursor = await loop.run_in_executor(worker, ExportCursor, runtime.store.path, wanted)
        except BaseException:
            worker.shutdown(wait=False)
            raise
        await runtime.store.append(ev.AuditRecorded(actor=who.actor, action="conversations.export", target=format_,
                                                    detail=wanted.describe(), ip=who.ip))
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        return Stream(_rows(cursor, worker, format_), media_type=_MEDIA[format_],
                      headers={"Content-Disposition": f'attachment; filename="conversations-{stamp}.{format_}"'})


async def _rows(cursor: ExportCursor, worker: ThreadPoolExecutor, fmt: reports.ExportFormat) -> AsyncIterator[bytes]:
    """The export's bytes, a chunk of rows at a time; the cursor is read and closed on its own
    thread, after any read still running there when the client goes away."""
    loop = asyncio.get_running_loop()
    try:
        header = reports.export_header(fmt)
        if header:
            yield header
        while rows := await loop.run_in_executor(worker, cursor.fetch, EXPORT_CHUNK):
            yield reports.export_chunk(rows, fmt)
    finally:
        worker.submit(cursor.close)
        worker.shutdown(wait=False)


ROUTES = [ReportsController, ConversationsController]
