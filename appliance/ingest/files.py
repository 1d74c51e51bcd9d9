"""Finding the files to ingest, decoding text, and dispatching to the reader for each format."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable
from pathlib import Path

from appliance.core.chunking import SourceDocument
from appliance.core.errors import InputError

MAX_FILE_BYTES = 64 * 1024 * 1024
# A directory holding a file of this name is skipped when its parent is ingested (test data,
# drafts); naming the directory itself still ingests it.
NO_INGEST_MARKER = ".noingest"


class UnreadableDocument(InputError):
    """A file that cannot be ingested; the message starts with its path."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def decode_text(path: Path, data: bytes) -> str:
    """Text of a file in UTF-8 (with or without BOM), UTF-16 (with BOM) or GB18030."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise UnreadableDocument(path, "invalid UTF-16 text") from None
    if b"\x00" in data[:8192]:
        raise UnreadableDocument(path, "looks like a binary file, not text")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnreadableDocument(path, "text is neither UTF-8 nor GB18030")


def _readers() -> dict[str, tuple[str, Callable[[Path, bytes], SourceDocument]]]:
    from appliance.ingest import html, markdown, office, pdf, qa, text

    return {
        ".md": ("markdown", markdown.read), ".markdown": ("markdown", markdown.read),
        ".txt": ("text", text.read), ".text": ("text", text.read),
        ".html": ("html", html.read), ".htm": ("html", html.read),
        ".pdf": ("pdf", pdf.read),
        ".docx": ("docx", office.read_docx),
        ".csv": ("csv", qa.read_csv), ".tsv": ("csv", qa.read_csv),
        ".xlsx": ("xlsx", qa.read_xlsx),
    }


SUPPORTED_SUFFIXES = frozenset(
    {".md", ".markdown", ".txt", ".text", ".html", ".htm", ".pdf", ".docx", ".csv", ".tsv", ".xlsx"}
)


def discover(paths: Iterable[Path | str]) -> tuple[list[Path], list[UnreadableDocument]]:
    """The supported files under ``paths`` (directories recursively; hidden entries and
    directories marked with a ``.noingest`` file are skipped), sorted and without duplicates,
    and an error for each given path that cannot be used."""
    found: dict[Path, None] = {}
    problems: list[UnreadableDocument] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            skipped = {marker.parent for marker in path.rglob(NO_INGEST_MARKER) if marker.parent != path}
            for child in sorted(path.rglob("*")):
                relative = child.relative_to(path).parts
                if any(part.startswith((".", "~$")) for part in relative):
                    continue
                if any(parent in skipped for parent in child.parents):
                    continue
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES:
                    found[child.resolve()] = None
        elif path.is_file():
            if path.suffix.lower() in SUPPORTED_SUFFIXES:
                found[path.resolve()] = None
            else:
                problems.append(UnreadableDocument(path, f"unsupported file type '{path.suffix or path.name}'"))
        else:
            problems.append(UnreadableDocument(path, "no such file or directory"))
    return list(found), problems


def read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise UnreadableDocument(path, f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        return path.read_bytes()
    except OSError as exc:
        raise UnreadableDocument(path, f"cannot read ({exc.strerror or exc})") from None


def read_document(path: Path, data: bytes | None = None) -> SourceDocument:
    """Parse one file (``data``, when given, is its content, already read)."""
    readers = _readers()
    entry = readers.get(path.suffix.lower())
    if entry is None:
        raise UnreadableDocument(path, f"unsupported file type '{path.suffix or path.name}'")
    if data is None:
        data = read_bytes(path)
    _, reader = entry
    try:
        document = reader(path, data)
    except UnreadableDocument:
        raise
    except RecursionError:
        raise UnreadableDocument(path, "document is nested too deeply") from None
    except Exception as exc:  # a parser library choking on a malformed file
        raise UnreadableDocument(path, f"malformed {entry[0]} file ({type(exc).__name__}: {exc})") from None
    if not any(block.text.strip() or block.answer.strip() for block in document.blocks if block.kind != "heading"):
        raise UnreadableDocument(path, "no text found")
    return document
