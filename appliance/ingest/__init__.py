"""Readers that turn support documents into structured blocks (:class:`SourceDocument`).

Markdown, plain text, HTML, PDF, Word (.docx), and question/answer spreadsheets (CSV, XLSX).
:func:`discover` expands files and directories (recursively) into the files to read;
:func:`read_document` reads one. A file that cannot be read (malformed, encrypted, empty,
unsupported) raises :class:`UnreadableDocument` naming it, so the caller can report it and go on.
"""

from __future__ import annotations

from appliance.core.chunking import Block, SourceDocument
from appliance.ingest.files import SUPPORTED_SUFFIXES, UnreadableDocument, discover, read_document

__all__ = ["SUPPORTED_SUFFIXES", "Block", "SourceDocument", "UnreadableDocument", "discover", "read_document"]
