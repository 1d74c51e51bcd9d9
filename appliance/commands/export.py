"""``appliance export conversations --format csv|jsonl [--since DATE] > FILE``: every message of
the conversations the filters find (the console's search filters), one row each, streamed to
standard output a chunk at a time from one read snapshot; audited (``conversations.export``).
The count goes to standard error, so the file holds only the export."""

from __future__ import annotations

import argparse
import sys

from appliance.commands._context import node
from appliance.core import events as ev
from appliance.core import reports
from appliance.store.conversation_search import ExportCursor

CHUNK = 1000


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("export", help="export conversations as CSV or JSON lines")
    actions = parser.add_subparsers(dest="export_command", metavar="WHAT", required=True)
    conversations = actions.add_parser(
        "conversations", help="every message of the conversations found, one row each, to standard output")
    conversations.add_argument("--format", choices=reports.EXPORT_FORMATS, default="csv",
                               help="csv (UTF-8 with a BOM, RFC 4180 quoting) or jsonl (one JSON object a line)")
    conversations.add_argument("--since", metavar="DATE", help="conversations started on or after this day"
                               " (YYYY-MM-DD, in desk.timezone)")
    conversations.add_argument("--until", metavar="DATE", help="... and on or before this day")
    conversations.add_argument("--query", "-q", metavar="TEXT", help="only conversations with a message that"
                               " contains these words (English or Chinese)")
    conversations.add_argument("--agent", metavar="NAME", help="only conversations this agent owned, was"
                               " assigned or answered")
    conversations.add_argument("--source", choices=reports.SOURCES, help="only conversations with a message"
                               " from this reply source")
    conversations.add_argument("--resolved", choices=("yes", "no"), help="only resolved, or only open, ones")
    conversations.set_defaults(run=run_conversations)


def run_conversations(args: argparse.Namespace) -> int:
    with node(args) as (config, _, store):
        wanted = reports.parse_filter(q=args.query, since=args.since, until=args.until, agent=args.agent,
                                      source=args.source, resolved=args.resolved, timezone=config.desk.timezone)
        fmt = reports.export_format(args.format)
        cursor = ExportCursor(store.path, wanted)
        try:
            store.append_sync(ev.AuditRecorded(actor="cli", action="conversations.export", target=fmt,
                                               detail=wanted.describe(), ip="local"))
            out = sys.stdout.buffer
            out.write(reports.export_header(fmt))
            count = 0
            for rows in cursor.chunks(CHUNK):
                out.write(reports.export_chunk(rows, fmt))
                count += len(rows)
            out.flush()
        finally:
            cursor.close()
    print(f"exported {count} messages", file=sys.stderr)
    return 0
