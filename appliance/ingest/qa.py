"""Question/answer spreadsheets (CSV, TSV, XLSX) into Q&A pairs.

The header row names the columns; English and Chinese names are recognised (``question`` /
``q`` / ``问题`` ..., ``answer`` / ``a`` / ``答案`` ..., and optionally ``category`` / ``分类``,
which becomes the section of its pairs). A sheet whose header has no question and answer
columns is read as a table instead: each row becomes ``Header: value; ...``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from appliance.core.chunking import Block, SourceDocument
from appliance.ingest.files import UnreadableDocument, decode_text
from appliance.ingest.markdown import table_row

QUESTION_NAMES = (
    "question", "questions", "q", "query", "faq", "user question", "customer question", "问题", "问", "提问",
    "问句", "标准问题", "常见问题", "用户问题", "题目", "咨询问题", "问法", "问题描述",
)
ANSWER_NAMES = (
    "answer", "answers", "a", "response", "reply", "resolution", "solution", "答案", "回答", "答", "解答",
    "答复", "回复", "标准答案", "解决方案",
)
CATEGORY_NAMES = ("category", "topic", "section", "group", "分类", "类别", "类型", "主题", "栏目", "业务")


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-:：?？()（）/]+", " ", name.strip().lower()).strip()


def _find(header: Sequence[str], names: Iterable[str], *, partial: Sequence[str] = ()) -> int | None:
    normalised = [_normalise(cell) for cell in header]
    for name in names:
        if name in normalised:
            return normalised.index(name)
    for index, cell in enumerate(normalised):
        if cell and any(word in cell for word in partial):
            return index
    return None


def qa_columns(header: Sequence[str]) -> tuple[int, int, int | None] | None:
    """Indexes of the question, answer and (optional) category columns, if the header has them."""
    question = _find(header, QUESTION_NAMES, partial=("question", "问题"))
    answer = _find(header, ANSWER_NAMES, partial=("answer", "答案", "回答"))
    if question is None or answer is None or question == answer:
        return None
    return question, answer, _find(header, CATEGORY_NAMES)


def _cell(row: Sequence[object], index: int | None) -> str:
    if index is None or index >= len(row) or row[index] is None:
        return ""
    return re.sub(r"[ \t\u00a0]+", " ", str(row[index])).strip()


def rows_to_blocks(rows: Iterable[Sequence[object]]) -> list[Block]:
    iterator = iter(rows)
    header: list[str] = []
    for row in iterator:  # the first non-empty row is the header
        header = [_cell(row, index) for index in range(len(row))]
        if any(header):
            break
    columns = qa_columns(header)
    blocks: list[Block] = []
    category = ""
    for row in iterator:
        if columns is None:
            text = table_row(header, [_cell(row, index) for index in range(len(row))])
            if text:
                blocks.append(Block(kind="table_row", text=text))
            continue
        question, answer = _cell(row, columns[0]), _cell(row, columns[1])
        if not question or not answer:
            continue
        row_category = _cell(row, columns[2])
        if row_category and row_category != category:
            category = row_category
            blocks.append(Block(kind="heading", level=1, text=category))
        blocks.append(Block(kind="qa", text=question, answer=answer))
    return blocks


def _title(path: Path) -> str:
    return path.stem.replace("_", " ").replace("-", " ").strip() or path.name


def read_csv(path: Path, data: bytes) -> SourceDocument:
    text = decode_text(path, data)
    if path.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise UnreadableDocument(path, f"malformed CSV ({exc})") from None
    return SourceDocument(source=str(path), title=_title(path), format="csv", blocks=rows_to_blocks(rows))


def read_xlsx(path: Path, data: bytes) -> SourceDocument:
    import openpyxl  # type: ignore[import-untyped]

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise UnreadableDocument(path, f"malformed Excel workbook ({type(exc).__name__}: {exc})") from None
    try:
        blocks: list[Block] = []
        sheets = list(workbook.worksheets)
        for sheet in sheets:
            sheet_blocks = rows_to_blocks(sheet.iter_rows(values_only=True))
            if len(sheets) > 1 and sheet_blocks:
                blocks.append(Block(kind="heading", level=1, text=str(sheet.title)))
                sheet_blocks = [
                    Block(kind=b.kind, text=b.text, level=b.level + 1 if b.kind == "heading" else b.level,
                          answer=b.answer)
                    for b in sheet_blocks
                ]
            blocks.extend(sheet_blocks)
    finally:
        workbook.close()
    return SourceDocument(source=str(path), title=_title(path), format="xlsx", blocks=blocks)
