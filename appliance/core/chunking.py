"""Documents as structured blocks, and chunking them by structure for retrieval.

A reader (``appliance.ingest``) turns a file into a :class:`SourceDocument`: a flat list of
:class:`Block` s (headings with their level, paragraphs, list items, table rows, Q&A pairs).
:func:`chunk_document` walks the blocks keeping the heading path as the chunk's *section*,
packs consecutive content blocks into chunks of at most ``chunk_chars`` and repeats up to
``overlap_chars`` of the end of one chunk at the start of the next within the same section. A
section change always starts a new chunk; a Q&A pair is always one chunk of its own.

Sizes are measured by :func:`text_size`, in which a CJK character counts as three: one Chinese
character carries about as much meaning, and costs about as many model tokens, as three Latin
letters, so the same ``chunk_chars`` gives chunks of similar weight in either language.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Literal

import msgspec

BlockKind = Literal["heading", "paragraph", "list_item", "table_row", "qa"]


class Block(msgspec.Struct, frozen=True, kw_only=True):
    """One structural unit of a document.

    ``text`` is the heading, paragraph, list item, table row (rendered ``Header: value; ...``)
    or the question of a Q&A pair; ``answer`` is set only for ``qa``. ``level`` is the heading
    level (1 = top) or the nesting depth of a list item.
    """

    kind: BlockKind
    text: str
    level: int = 0
    answer: str = ""


class SourceDocument(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    title: str
    format: str
    blocks: list[Block]


class Chunk(msgspec.Struct, frozen=True, kw_only=True):
    """A retrievable piece of a document: ``text`` (the question for a Q&A pair) under ``section``."""

    ordinal: int
    section: str
    text: str
    is_qa: bool = False
    answer: str = ""


SECTION_SEPARATOR = " > "
_CJK = (
    "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
)
CJK_CHAR = re.compile(f"[{_CJK}]")
# Characters between which wrapped lines join without a space: CJK plus its punctuation.
WIDE_CHAR = re.compile(f"[{_CJK}\u3000-\u303f\uff00-\uff65]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)|(?<=[。！？；!?])(?=\S)|\n+")
_SPACE = re.compile(r"[ \t\u00a0\u3000]+")
_CLAUSE_END = re.compile(r"[，、；：,;:]\s*")


def text_size(text: str) -> int:
    """Length with each CJK character counted three times (see the module docstring)."""
    return len(text) + 2 * len(CJK_CHAR.findall(text))


def clean_text(text: str) -> str:
    """Collapse runs of spaces and tabs, trim each line, drop empty lines."""
    lines = (_SPACE.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def split_sentences(text: str) -> list[str]:
    """Sentences of English, Chinese or mixed text, with their punctuation kept."""
    return [part.strip() for part in _SENTENCE_END.split(text) if part and part.strip()]


def join_sentences(sentences: list[str], separator: str = " ") -> str:
    """Sentences joined by ``separator``, or by nothing between a CJK end and a CJK start."""
    out = ""
    for sentence in sentences:
        out += (_joiner(out, sentence) if separator == " " else separator) if out else ""
        out += sentence
    return out


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` (measured by :func:`text_size`), at a space where possible."""
    return next(_hard_split(text.strip(), max(limit, 1)), "")


def _joiner(left: str, right: str) -> str:
    """No space where a sentence ends or starts with a CJK character, one otherwise."""
    if left and right and (WIDE_CHAR.match(left[-1]) or WIDE_CHAR.match(right[0])):
        return ""
    return " "


def _hard_split(text: str, limit: int) -> Iterator[str]:
    """Cut a sentence longer than ``limit`` at spaces where it has them, else anywhere."""
    while text_size(text) > limit:
        cut, size = 0, 0
        for index, char in enumerate(text):
            size += 3 if CJK_CHAR.match(char) else 1
            if size > limit:
                break
            cut = index + 1
        space = text.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space
        yield text[:cut].strip()
        text = text[cut:].strip()
    if text:
        yield text


class _Piece(msgspec.Struct, frozen=True):
    text: str
    block: int  # index of the block it came from: pieces of one block join with spaces
    size: int


def _pieces(block_index: int, block: Block, limit: int) -> Iterator[_Piece]:
    text = block.text
    if block.kind == "list_item":
        text = "- " + text
    sentences = [text] if text_size(text) <= limit else split_sentences(text)
    for sentence in sentences:
        for part in _hard_split(sentence, limit):
            yield _Piece(part, block_index, text_size(part))


def _render(pieces: list[_Piece]) -> str:
    out = ""
    for index, piece in enumerate(pieces):
        if index:
            previous = pieces[index - 1]
            out += _joiner(previous.text, piece.text) if previous.block == piece.block else "\n"
        out += piece.text
    return out


def _size(pieces: list[_Piece]) -> int:
    """An upper bound of the rendered size: the pieces plus one separator between each two."""
    return sum(piece.size for piece in pieces) + len(pieces) - 1


def _overlap_tail(pieces: list[_Piece], overlap: int) -> list[_Piece]:
    """The trailing pieces (whole ones, else the end of the last one) fitting in ``overlap``."""
    tail: list[_Piece] = []
    size = 0
    for piece in reversed(pieces):
        if size + piece.size + 1 > overlap:
            break
        tail.insert(0, piece)
        size += piece.size + 1
    if tail or not pieces or overlap <= 0:
        return tail
    last = pieces[-1]
    start = len(last.text)
    while start > 0 and text_size(last.text[start - 1:]) <= overlap:
        start -= 1
    clause = _CLAUSE_END.search(last.text, start)
    space = last.text.find(" ", start)
    if clause is not None and clause.end() < len(last.text) - 1:
        start = clause.end()
    elif 0 <= space < len(last.text) - 1:
        start = space + 1
    end = last.text[start:].strip()
    return [_Piece(end, last.block, text_size(end))] if end else []


def chunk_document(document: SourceDocument, chunk_chars: int, overlap_chars: int) -> list[Chunk]:
    """Chunks of ``document`` in reading order, numbered from 0."""
    limit = max(chunk_chars, 40)
    piece_limit = max(limit // 2, 20)
    overlap = max(0, min(overlap_chars, limit // 2))
    chunks: list[Chunk] = []
    headings: list[tuple[int, str]] = []
    current: list[_Piece] = []
    fresh = 0  # pieces of ``current`` that are not overlap carried from the previous chunk

    def section() -> str:
        return SECTION_SEPARATOR.join(text for _, text in headings)

    def emit(*, carry: bool) -> None:
        nonlocal current, fresh
        if fresh:
            chunks.append(Chunk(ordinal=len(chunks), section=section(), text=_render(current)))
        current = _overlap_tail(current, overlap) if carry and fresh else []
        fresh = 0

    for index, block in enumerate(document.blocks):
        if block.kind == "heading":
            emit(carry=False)
            level = max(block.level, 1)
            while headings and headings[-1][0] >= level:
                headings.pop()
            if block.text:
                headings.append((level, block.text))
            continue
        if block.kind == "qa":
            emit(carry=False)
            if block.text or block.answer:
                chunks.append(Chunk(
                    ordinal=len(chunks), section=section(), text=block.text, is_qa=True, answer=block.answer,
                ))
            continue
        for piece in _pieces(index, block, piece_limit):
            if current and _size(current) + 1 + piece.size > limit:
                if fresh:
                    emit(carry=True)
                while current and _size(current) + 1 + piece.size > limit:
                    current.pop(0)
            current.append(piece)
            fresh += 1
    emit(carry=False)
    return chunks


def embedding_text(title: str, chunk: Chunk) -> str:
    """What gets embedded for a chunk: the question of a Q&A pair; else section path and text.

    A Q&A pair is embedded by its question alone, so its vector similarity to a visitor's
    question is what decides whether the pair answers directly.
    """
    if chunk.is_qa:
        return chunk.text or chunk.answer
    heading = chunk.section or title
    if title and chunk.section and not chunk.section.startswith(title):
        heading = f"{title}{SECTION_SEPARATOR}{chunk.section}"
    return f"{heading}\n{chunk.text}" if heading else chunk.text


def text_hash(text: str) -> bytes:
    """The key of the embedding cache (with the model id)."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def chunk_id(document_id: str, chunk: Chunk) -> str:
    """Stable for the same text at the same place, new when either changes (citations stay true)."""
    digest = hashlib.sha256(
        f"{document_id}\x1f{chunk.ordinal}\x1f{chunk.section}\x1f{chunk.text}\x1f{chunk.answer}".encode()
    ).hexdigest()
    return f"ch_{digest[:20]}"
