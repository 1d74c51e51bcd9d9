"""HTML: headings, paragraphs, list items and table rows, from the standard library's parser.

Scripts, styles, navigation and other non-content elements are skipped; the page title is the
``<title>`` (else the first ``<h1>``).
"""

from __future__ import annotations

import codecs
import re
from html.parser import HTMLParser
from pathlib import Path

from appliance.core.chunking import Block, SourceDocument
from appliance.ingest.files import decode_text
from appliance.ingest.markdown import join_lines, table_row, title_of

_SKIP = {"script", "style", "noscript", "template", "svg", "nav", "iframe", "object", "button", "select"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
_BLOCK = {
    "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "pre", "li", "dt",
    "dd", "ul", "ol", "dl", "table", "tr", "form", "figure", "figcaption", "address", "details", "summary",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "br", "body", "center", "fieldset", "caption",
}
_HEADING = re.compile(r"^h([1-6])$")
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_\-]+)", re.IGNORECASE)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.title = ""
        self._in_title = False
        self._skip = 0
        self._stack: list[str] = []
        self._text: list[str] = []
        self._tables: list[list[str]] = []  # header of each open table
        self._row: list[str] | None = None
        self._row_is_header = True
        self._cell: list[str] | None = None

    # -- text accumulation
    def _flush(self) -> None:
        text = join_lines("".join(self._text).split("\n"))
        self._text.clear()
        if not text:
            return
        heading = next((tag for tag in reversed(self._stack) if _HEADING.match(tag)), None)
        if heading:
            self.blocks.append(Block(kind="heading", level=int(heading[1]), text=text))
        elif "li" in self._stack or "dd" in self._stack:
            depth = sum(1 for tag in self._stack if tag in ("ul", "ol", "dl"))
            self.blocks.append(Block(kind="list_item", level=max(depth - 1, 0), text=text))
        else:
            self.blocks.append(Block(kind="paragraph", text=text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
            return
        if tag in _SKIP:
            if tag not in _VOID:
                self._skip += 1
            return
        if self._skip:
            return
        if tag in ("td", "th") and self._row is not None:
            self._cell = []
            if tag == "td":
                self._row_is_header = False
            return
        if tag == "br":
            (self._cell if self._cell is not None else self._text).append("\n")
            return
        if tag in _BLOCK and self._cell is None:
            self._flush()
        if tag == "table":
            self._tables.append([])
        elif tag == "tr":
            self._row, self._row_is_header = [], True
        if tag not in _VOID:
            self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
            return
        if self._skip:
            return
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(join_lines("".join(self._cell).split("\n")))
            self._cell = None
            return
        if tag == "tr" and self._row is not None:
            self._end_row()
        if tag in _BLOCK and self._cell is None:
            self._flush()
        if tag == "table" and self._tables:
            self._tables.pop()
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def _end_row(self) -> None:
        row, self._row = self._row or [], None
        if not any(row):
            return
        header = self._tables[-1] if self._tables else []
        if self._row_is_header and not header and self._tables:
            self._tables[-1].extend(row)
            return
        text = table_row(header, row)
        if text:
            self.blocks.append(Block(kind="table_row", text=text))

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
            return
        if self._skip:
            return
        data = re.sub(r"\s+", " ", data)
        (self._cell if self._cell is not None else self._text).append(data)

    def close(self) -> None:
        super().close()
        if self._row is not None:
            self._end_row()
        self._flush()


def _decode(path: Path, data: bytes) -> str:
    match = _META_CHARSET.search(data[:4096])
    if match and not data.startswith(codecs.BOM_UTF8):
        try:
            return data.decode(match.group(1).decode("ascii"), errors="replace")
        except LookupError:
            pass
    return decode_text(path, data)


def parse(text: str) -> tuple[str, list[Block]]:
    reader = _Reader()
    reader.feed(text)
    reader.close()
    return re.sub(r"\s+", " ", reader.title).strip(), reader.blocks


def read(path: Path, data: bytes) -> SourceDocument:
    title, blocks = parse(_decode(path, data))
    return SourceDocument(source=str(path), title=title or title_of(blocks, path), format="html", blocks=blocks)
