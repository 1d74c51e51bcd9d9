"""PDF text with pypdf: pages into paragraphs, short unpunctuated lines standing alone as headings.

Encrypted files open only when the user password is empty (then they read like any other);
otherwise they are reported as encrypted. A PDF without extractable text (a scan) is reported too.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from appliance.core.chunking import Block, SourceDocument
from appliance.ingest.files import UnreadableDocument
from appliance.ingest.markdown import join_lines, title_of

_SENTENCE_END = re.compile(r"[.!?:;。！？：；)）\]]$")
_NUMBERED_HEADING = re.compile(r"^(\d+(\.\d+)*\.?|第[一二三四五六七八九十百\d]+[章节条部分])\s*\S")
_BULLET = re.compile(r"^\s*(?:[•·▪◦\-*]|\d{1,3}[.)、])\s+(.+)$")


def _is_heading(line: str, next_line: str | None) -> bool:
    if len(line) > 80 or _SENTENCE_END.search(line) or _BULLET.match(line):
        return False
    if _NUMBERED_HEADING.match(line):
        return True
    return next_line is not None and len(next_line) > len(line) and len(line.split()) <= 8 and line[:1].isupper()


def parse_page(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.replace("\r", "\n").split("\n")]
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block(kind="paragraph", text=join_lines(paragraph)))
            paragraph.clear()

    for index, line in enumerate(lines):
        if not line:
            flush()
            continue
        following = next((later for later in lines[index + 1:] if later), None)
        bullet = _BULLET.match(line)
        if bullet:
            flush()
            blocks.append(Block(kind="list_item", text=bullet.group(1)))
        elif not paragraph and _is_heading(line, following):
            blocks.append(Block(kind="heading", level=2, text=line))
        else:
            if blocks and blocks[-1].kind == "list_item" and not paragraph and line[:1].islower():
                blocks[-1] = Block(kind="list_item", text=join_lines([blocks[-1].text, line]))
                continue
            paragraph.append(line)
            if _SENTENCE_END.search(line) and len(line) < 60:
                flush()
    flush()
    return blocks


def read(path: Path, data: bytes) -> SourceDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableDocument(path, "the PDF is encrypted (password protected)")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except UnreadableDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnreadableDocument(path, f"malformed PDF ({exc})") from None
    except Exception as exc:
        if "decrypt" in str(exc).lower() or "encrypt" in type(exc).__name__.lower():
            raise UnreadableDocument(path, "the PDF is encrypted (password protected)") from None
        raise
    if not any(page.strip() for page in pages):
        raise UnreadableDocument(path, "no extractable text in the PDF (a scanned image?)")
    blocks = [block for page in pages for block in parse_page(page)]
    title = str(meta_title).strip() or title_of(blocks, path)
    return SourceDocument(source=str(path), title=title, format="pdf", blocks=blocks)
