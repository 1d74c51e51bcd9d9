"""Event handlers for the knowledge base (registered with :func:`appliance.store.apply.handles`)."""

from __future__ import annotations

from appliance.core import events as ev
from appliance.store.apply import handles
from appliance.store.db import Connection
from appliance.store.knowledge import apply_document_removed, apply_document_upserted


@handles(ev.DocumentUpserted)
def _document_upserted(conn: Connection, e: ev.Event, p: ev.DocumentUpserted) -> None:
    apply_document_upserted(conn, e, p)


@handles(ev.DocumentRemoved)
def _document_removed(conn: Connection, e: ev.Event, p: ev.DocumentRemoved) -> None:
    apply_document_removed(conn, e, p)
