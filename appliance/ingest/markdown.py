"""Markdown (CommonMark's block structure, pragmatically): headings, paragraphs, lists, tables."""

from __future__ import annotations

import re
from pathlib import Path

from appliance.core.chunking import WIDE_CHAR, Block, SourceDocument
from appliance.ingest.files import decode_text

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST = re.compile(r"^([ \t]*)(?:[-*+]|\d{1,9}[.)])[ \t]+(.*)$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_QUOTE = re.compile(r"^ {0,3}>[ ]?")

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_REF_LINK = re.compile(r"\[([^\]]+)\]\[[^\]]*\]")
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|~~)(?=\S)(.+?)(?<=\S)\1")
_CODE = re.compile(r"`+([^`]*)`+")
_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>]+)>")


def strip_inline(text: str) -> str:
    """Plain text of inline Markdown: links keep their text, emphasis and code marks go."""
    text = _AUTOLINK.sub(r"\1", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _REF_LINK.sub(r"\1", text)
    text = _CODE.sub(r"\1", text)
    for _ in range(2):
        text = _EMPHASIS.sub(r"\2", text)
    text = _TAG.sub("", text)
    return re.sub(r"\s+", " ", text.replace("\\", "")).strip()


def join_lines(lines: list[str]) -> str:
    """Join wrapped lines: with a space, or with nothing where either side is a CJK character."""
    out = ""
    for line in (line.strip() for line in lines):
        if not line:
            continue
        if out and not (WIDE_CHAR.match(out[-1]) or WIDE_CHAR.match(line[0])):
            out += " "
        out += line
    return out


def _cells(line: str) -> list[str]:
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    if line.endswith("|") and not line.endswith("\\|"):
        line = line[:-1]
    return [strip_inline(cell) for cell in re.split(r"(?<!\\)\|", line)]


def table_row(header: list[str], cells: list[str]) -> str:
    """A table row as ``Header: value; ...`` (cells without a header stand alone)."""
    parts = []
    for index, cell in enumerate(cells):
        if not cell:
            continue
        name = header[index] if index < len(header) else ""
        parts.append(f"{name}: {cell}" if name and name != cell else cell)
    return "; ".join(parts)


def _front_matter_end(lines: list[str]) -> int:
    if lines and lines[0].strip() == "---":
        for index in range(1, min(len(lines), 200)):
            if lines[index].strip() in ("---", "..."):
                return index + 1
    return 0


def parse(text: str) -> list[Block]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[Block] = []
    paragraph: list[str] = []
    index = _front_matter_end(lines)

    def flush() -> None:
        if paragraph:
            joined = strip_inline(join_lines(paragraph))
            if joined:
                blocks.append(Block(kind="paragraph", text=joined))
            paragraph.clear()

    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        quote = _QUOTE.match(line)
        if quote:
            line = line[quote.end():]
            stripped = line.strip()
        if not stripped:
            flush()
            index += 1
            continue
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker, code = fence.group(1), []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(marker):
                code.append(lines[index])
                index += 1
            if any(c.strip() for c in code):
                blocks.append(Block(kind="paragraph", text="\n".join(c.rstrip() for c in code).strip()))
            index += 1
            continue
        atx = _ATX.match(line)
        if atx:
            flush()
            blocks.append(Block(kind="heading", level=len(atx.group(1)), text=strip_inline(atx.group(2) or "")))
            index += 1
            continue
        setext = _SETEXT.match(line)
        if setext and paragraph:
            heading = strip_inline(join_lines(paragraph))
            paragraph.clear()
            blocks.append(Block(kind="heading", level=1 if setext.group(1)[0] == "=" else 2, text=heading))
            index += 1
            continue
        if _RULE.match(line):
            flush()
            index += 1
            continue
        if "|" in stripped and index + 1 < len(lines) and _TABLE_SEPARATOR.match(lines[index + 1]):
            flush()
            header = _cells(stripped)
            index += 2
            while index < len(lines) and "|" in lines[index] and lines[index].strip():
                row = table_row(header, _cells(lines[index]))
                if row:
                    blocks.append(Block(kind="table_row", text=row))
                index += 1
            continue
        item = _LIST.match(line)
        if item and (not paragraph or not item.group(2).startswith(" ")):
            flush()
            depth = len(item.group(1).expandtabs(4)) // 2
            content = [item.group(2)]
            index += 1
            while index < len(lines):
                following = lines[index]
                if not following.strip() or _LIST.match(following) or _ATX.match(following):
                    break
                if not following.startswith((" ", "\t")) and _FENCE.match(following):
                    break
                content.append(following)
                index += 1
            text = strip_inline(join_lines(content))
            if text:
                blocks.append(Block(kind="list_item", level=depth, text=text))
            continue
        paragraph.append(stripped)
        index += 1
    flush()
    return blocks


def title_of(blocks: list[Block], path: Path) -> str:
    for block in blocks:
        if block.kind == "heading" and block.level == 1 and block.text:
            return block.text
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name


def read(path: Path, data: bytes) -> SourceDocument:
    blocks = parse(decode_text(path, data))
    return SourceDocument(source=str(path), title=title_of(blocks, path), format="markdown", blocks=blocks)
