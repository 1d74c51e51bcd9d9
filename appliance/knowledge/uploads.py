"""Documents uploaded from the console, and re-index requests, ingested one at a time in the
background through :meth:`KnowledgeService.add_paths` (the path ``appliance kb add`` takes).

An upload is saved under ``<data_dir>/uploads/<its relative name>`` (a folder upload keeps its
sub-folders), so the document's source is a real file that a later re-index reads again. Each
file is a :class:`IngestJob` (``queued`` → ``ingesting`` → ``done`` or ``failed`` with the
reason), kept in memory for the console to poll (the last ``KEEP_JOBS``). A new upload that
fails is deleted from disk again; the knowledge base never saw it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import msgspec

from appliance.core.errors import InputError, TooLarge, Unavailable, UnsupportedMedia
from appliance.ingest import SUPPORTED_SUFFIXES
from appliance.knowledge.service import KnowledgeService

KEEP_JOBS = 500
MAX_NAME_CHARS = 1024

JobStatus = Literal["queued", "ingesting", "done", "failed"]


class IngestJob(msgspec.Struct, kw_only=True):
    job_id: str
    name: str  # as the admin gave it (an upload's relative path) or the document's source
    kind: Literal["upload", "reindex"]
    status: JobStatus = "queued"
    outcome: str = ""  # added, updated or unchanged, once done
    document_id: str = ""
    chunks: int = 0
    error: str = ""
    queued_at_ms: int = 0
    finished_at_ms: int = 0


def upload_parts(name: str) -> list[str]:
    """The safe relative path of an uploaded file (``docs/faq.md``), or InputError /
    UnsupportedMedia saying what is wrong with the name."""
    name = name.strip().replace("\\", "/")
    if not name:
        raise InputError("name the file in the X-Filename header (URL-encoded UTF-8, e.g. docs%2Ffaq.md)")
    if len(name) > MAX_NAME_CHARS:
        raise InputError(f"file name is longer than {MAX_NAME_CHARS} characters")
    parts = [part for part in name.split("/") if part]
    for part in parts:
        if part in (".", "..") or part.startswith(".") or any(ord(c) < 32 or c == "\x7f" for c in part):
            raise InputError(f"file name {name!r} has a part that is not allowed ({part!r})")
    suffix = Path(parts[-1]).suffix.lower() if parts else ""
    if suffix not in SUPPORTED_SUFFIXES:
        kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedMedia(f"unsupported file type '{suffix or parts[-1]}'; the knowledge base reads {kinds}")
    return parts


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class IngestQueue:
    """The console's ingest jobs; a worker task (started with the first job) runs them in order."""

    def __init__(self, knowledge: Callable[[], KnowledgeService | None], uploads_dir: Path, *,
                 max_bytes: int) -> None:
        self._knowledge = knowledge
        self.uploads_dir = uploads_dir
        self.max_bytes = max_bytes
        self._jobs: OrderedDict[str, IngestJob] = OrderedDict()
        self._work: asyncio.Queue[tuple[IngestJob, Path, bool, tuple[str, str]]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._serial = itertools.count(1)

    def jobs(self) -> list[IngestJob]:
        return list(self._jobs.values())

    def display_name(self, source: str) -> str:
        """A document's source as the console shows it: relative to the uploads folder when it is in it."""
        root = str(self.uploads_dir.resolve()) + os.sep
        return source[len(root):].replace(os.sep, "/") if source.startswith(root) else source

    async def upload(self, name: str, data: bytes, *, actor: str, ip: str) -> IngestJob:
        """Save an uploaded file and queue it; the file's name and size are checked first."""
        parts = upload_parts(name)
        if not data:
            raise InputError("no file: the request body is empty")
        if len(data) > self.max_bytes:
            raise TooLarge(f"file is {len(data)} bytes; the limit is {self.max_bytes} (server.max_document_bytes)")
        service = self.service()
        target = self.uploads_dir.joinpath(*parts)
        known = {doc.source for doc in await service.list_documents()}
        await asyncio.to_thread(_save, target, data)
        return self._queue("upload", "/".join(parts), target.resolve(), str(target.resolve()) not in known,
                           (actor, ip))

    def reindex(self, sources: list[str], *, actor: str, ip: str) -> list[IngestJob]:
        self.service()
        return [self._queue("reindex", self.display_name(source), Path(source), False, (actor, ip))
                for source in sources]

    def service(self) -> KnowledgeService:
        """The knowledge base; Unavailable until the embedding model has loaded."""
        service = self._knowledge()
        if service is None:
            raise Unavailable("the appliance is starting: the embedding model is still loading")
        return service

    def _queue(self, kind: Literal["upload", "reindex"], name: str, path: Path, new: bool,
               by: tuple[str, str]) -> IngestJob:
        job = IngestJob(job_id=f"job_{next(self._serial)}_{secrets.token_hex(4)}", name=name, kind=kind,
                        queued_at_ms=_now_ms())
        self._jobs[job.job_id] = job
        while len(self._jobs) > KEEP_JOBS:
            self._jobs.popitem(last=False)
        self._work.put_nowait((job, path, new, by))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run())
        return job

    async def _run(self) -> None:
        while True:
            job, path, new, (actor, ip) = await self._work.get()
            job.status = "ingesting"
            try:
                report = await self.service().add_paths([path], actor=actor, ip=ip, force=job.kind == "reindex")
                outcome = report.files[0] if report.files else None
                if outcome is None:
                    job.status, job.error = "failed", "the file is gone"
                elif outcome.status == "failed":
                    job.status, job.error = "failed", outcome.error
                else:
                    job.status, job.outcome = "done", outcome.status
                    job.document_id, job.chunks = outcome.document_id, outcome.chunks
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a job never takes the worker down with it
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            if job.status == "failed" and new:
                with contextlib.suppress(OSError):
                    await asyncio.to_thread(path.unlink)
            job.finished_at_ms = _now_ms()

    async def forget(self, source: str) -> None:
        """Delete an uploaded document's file (after the document was removed); other files stay."""
        path = Path(source)
        if path.is_relative_to(self.uploads_dir.resolve()):
            with contextlib.suppress(OSError):
                await asyncio.to_thread(path.unlink)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker


def _save(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    partial.write_bytes(data)
    partial.replace(target)
