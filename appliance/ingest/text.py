"""Plain text: paragraphs separated by blank lines, ``-``/``*``/``1.`` lines as list items."""

from __future__ import annotations

import re
from pathlib import Path

from appliance.core.chunking import Block, SourceDocument
from appliance.ingest.files import decode_text
from appliance.ingest.markdown import join_lines, title_of

_LIST = re.compile(r"^\s*(?:[-*•·]|\d{1,3}[.)、])\s*(.+)$")


def parse(text: str) -> list[Block]:
    blocks: list[Block] = []
    for part in re.split(r"\n[ \t\u3000]*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = [line for line in part.split("\n") if line.strip()]
        if not lines:
            continue
        if all(_LIST.match(line) for line in lines):
            for line in lines:
                match = _LIST.match(line)
                assert match is not None
                blocks.append(Block(kind="list_item", text=match.group(1).strip()))
        else:
            blocks.append(Block(kind="paragraph", text=join_lines(lines)))
    return blocks


def read(path: Path, data: bytes) -> SourceDocument:
    blocks = parse(decode_text(path, data))
    return SourceDocument(source=str(path), title=title_of(blocks, path), format="text", blocks=blocks)
