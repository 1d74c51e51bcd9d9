"""Word documents (.docx) with python-docx: paragraphs and tables in body order.

Styles decide the kind: ``Title`` and ``Heading N`` are headings, ``List ...`` styles and
numbered paragraphs are list items. The first row of a table is its header.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from appliance.core.chunking import Block, SourceDocument
from appliance.ingest.files import UnreadableDocument
from appliance.ingest.markdown import table_row, title_of

_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.IGNORECASE)


def _paragraph_block(paragraph: Any) -> Block | None:
    text = re.sub(r"\s+", " ", paragraph.text).strip()
    if not text:
        return None
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    heading = _HEADING_STYLE.match(style.strip())
    if heading:
        return Block(kind="heading", level=int(heading.group(1)), text=text)
    if style.strip().lower() == "title":
        return Block(kind="heading", level=1, text=text)
    numbered = paragraph._p.pPr is not None and paragraph._p.pPr.numPr is not None
    if style.lower().startswith("list") or numbered:
        return Block(kind="list_item", text=text)
    return Block(kind="paragraph", text=text)


def _table_blocks(table: Any) -> list[Block]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = re.sub(r"\s+", " ", cell.text).strip()
            if not cells or text != cells[-1]:  # merged cells repeat their text
                cells.append(text)
        rows.append(cells)
    if not rows:
        return []
    header, blocks = rows[0], []
    for cells in rows[1:] or [[]]:
        text = table_row(header, cells) if cells else "; ".join(cell for cell in header if cell)
        if text:
            blocks.append(Block(kind="table_row", text=text))
    return blocks


def read_docx(path: Path, data: bytes) -> SourceDocument:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:
        raise UnreadableDocument(path, f"malformed Word document ({type(exc).__name__}: {exc})") from None
    blocks: list[Block] = []
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "p":
            block = _paragraph_block(Paragraph(element, document))
            if block is not None:
                blocks.append(block)
        elif tag == "tbl":
            blocks.extend(_table_blocks(Table(element, document)))
    title = (document.core_properties.title or "").strip() or title_of(blocks, path)
    return SourceDocument(source=str(path), title=title, format="docx", blocks=blocks)
