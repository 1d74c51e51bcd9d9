"""The admin API of the knowledge base: upload, list, delete, re-index, search (``knowledge.manage``).

An upload is one file per request, its bytes as the raw body (any Content-Type) and its name,
relative path included for a folder, URL-encoded in ``X-Filename``; it is saved and queued
(202) and ingested in the background by the path ``appliance kb add`` takes
(``knowledge/uploads.py``), audited as ``kb.add``/``kb.update``. ``GET .../jobs`` says where
each file stands; a listed document's ``status`` is ``indexed`` unless a job for it is queued,
ingesting or has just failed. Search answers with the same hits as ``appliance kb search
--json``: fused score, BM25 rank and score, vector rank and cosine.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import unquote

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import Provide

from appliance.core.errors import InputError, NotFound
from appliance.core.hlc import physical_ms
from appliance.core.language import detect
from appliance.core.types import ChunkHit
from appliance.ingest import SUPPORTED_SUFFIXES
from appliance.knowledge.uploads import IngestJob
from appliance.runtime import Runtime
from appliance.store import knowledge as kb
from appliance.web.auth import Principal, principal

FILENAME_HEADER = "x-filename"


class DocumentOut(msgspec.Struct, kw_only=True):
    document_id: str
    source: str
    name: str  # relative to the uploads folder for an uploaded file, else the source path
    title: str
    format: str
    chunks: int
    size_bytes: int
    language: str
    ingested_at_ms: int
    status: str = "indexed"  # or the status of a job for it not done: queued, ingesting, failed
    error: str = ""  # why the last job for it failed


class DocumentsOut(msgspec.Struct, kw_only=True):
    version: int
    documents: list[DocumentOut]
    max_bytes: int
    types: list[str]


class JobsOut(msgspec.Struct, kw_only=True):
    jobs: list[IngestJob]


class RemovedOut(msgspec.Struct, kw_only=True):
    removed: list[str]
    version: int


class SearchIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    query: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    k: Annotated[int, msgspec.Meta(ge=1, le=50)] = 5
    mode: Literal["hybrid", "bm25", "vector"] = "hybrid"


class SearchOut(msgspec.Struct, kw_only=True):
    hits: list[ChunkHit]
    mode: str
    version: int


async def knowledge_admin(request: Request[object, object, object], runtime: Runtime) -> Principal:
    who = await principal(request, runtime)
    who.require("knowledge.manage")
    return who


def file_name(request: Request[object, object, object]) -> str:
    raw = request.headers.get(FILENAME_HEADER, "")
    try:
        return unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise InputError("X-Filename must be URL-encoded UTF-8") from None


def document_status(jobs: list[IngestJob]) -> dict[str, tuple[str, str]]:
    """By a document's display name: its latest job's status and error, unless that job is done."""
    latest = {job.name: job for job in jobs}  # in queue order: the last one wins
    return {name: (job.status, job.error) for name, job in latest.items() if job.status != "done"}


class KnowledgeController(Controller):
    path = "/api/v1/admin/kb"
    dependencies = {"who": Provide(knowledge_admin)}
    tags = ["admin"]

    @get("/documents", summary="The documents: name, title, chunks, language, when last ingested")
    async def documents(self, runtime: Runtime, who: Principal) -> DocumentsOut:
        def read(conn: kb.Connection) -> tuple[int, list[kb.DocumentRow], dict[str, str]]:
            return kb.kb_version(conn), kb.list_documents(conn), kb.opening_texts(conn)

        version, rows, openings = await runtime.store.read(read)
        pending = document_status(runtime.ingest.jobs())
        documents = []
        for row in rows:
            name = runtime.ingest.display_name(row.source)
            status, error = pending.get(name, ("indexed", ""))
            documents.append(DocumentOut(
                document_id=row.document_id, source=row.source, name=name, title=row.title, format=row.format,
                chunks=row.chunk_count, size_bytes=row.size_bytes, status=status, error=error,
                language=detect(row.title + " " + openings.get(row.document_id, "")),
                ingested_at_ms=physical_ms(row.hlc),
            ))
        return DocumentsOut(
            version=version, max_bytes=runtime.ingest.max_bytes, types=sorted(SUPPORTED_SUFFIXES),
            documents=documents,
        )

    @post("/documents", status_code=202, request_max_body_size=None,  # web/limits.py: server.max_document_bytes
          summary="Upload one file (raw body, name in X-Filename); ingested in the background")
    async def upload(self, request: Request[object, object, object], runtime: Runtime, who: Principal) -> IngestJob:
        name = file_name(request)
        data = await request.body()
        return await runtime.ingest.upload(name, data, actor=who.actor, ip=who.ip)

    @get("/jobs", summary="Uploads and re-indexes of this server: queued, ingesting, done or failed (with why)")
    async def jobs(self, runtime: Runtime, who: Principal) -> JobsOut:
        return JobsOut(jobs=runtime.ingest.jobs())

    @delete("/documents/{document_id:str}", status_code=200, summary="Remove a document")
    async def remove(self, document_id: str, runtime: Runtime, who: Principal) -> RemovedOut:
        service = runtime.ingest.service()
        if await runtime.store.read(lambda conn: kb.get_document(conn, document_id)) is None:
            raise NotFound(f"no document {document_id} in the knowledge base")
        removed = await service.remove(document_id, actor=who.actor, ip=who.ip)
        for doc in removed:
            await runtime.ingest.forget(doc.source)
        return RemovedOut(removed=[doc.document_id for doc in removed], version=await service.version())

    @post("/documents/{document_id:str}/reindex", status_code=202, summary="Read and index one document again")
    async def reindex_one(self, document_id: str, runtime: Runtime, who: Principal) -> JobsOut:
        runtime.ingest.service()
        row = await runtime.store.read(lambda conn: kb.get_document(conn, document_id))
        if row is None:
            raise NotFound(f"no document {document_id} in the knowledge base")
        return JobsOut(jobs=runtime.ingest.reindex([row.source], actor=who.actor, ip=who.ip))

    @post("/reindex", status_code=202, summary="Read and index every document again")
    async def reindex_all(self, runtime: Runtime, who: Principal) -> JobsOut:
        rows = await runtime.ingest.service().list_documents()
        return JobsOut(jobs=runtime.ingest.reindex([row.source for row in rows], actor=who.actor, ip=who.ip))

    @post("/search", status_code=200, summary="The best chunks for a query with their BM25, vector and fused scores")
    async def search(self, data: SearchIn, runtime: Runtime, who: Principal) -> SearchOut:
        service = runtime.ingest.service()
        if not data.query.strip():
            raise InputError("query is blank")
        hits = await service.search(data.query, data.k, mode=data.mode)
        return SearchOut(hits=hits, mode=data.mode, version=await service.version())


ROUTES = [KnowledgeController]
