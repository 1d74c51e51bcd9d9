"""The knowledge base as a service: ingest files, keep the index, answer searches.

``KnowledgeService`` implements the engine's ``KnowledgeBase`` Protocol on top of the store
(events ``DocumentUpserted`` / ``DocumentRemoved``, tables in ``store/knowledge.py``) and an
embedder. Files are read and chunked on a worker thread; chunk embeddings are computed in
batches on the embedder's worker thread, and looked up first in the embedding cache by text
hash, so re-adding a file re-embeds only the chunks whose text changed (an unchanged file is
skipped before it is even parsed, by its content hash).

Every document added, replaced or removed is audited in the transaction that writes it
(``kb.add``, ``kb.update``, ``kb.remove``; before/after the content hash), naming the caller's
``actor`` and ``ip`` (the CLI passes ``cli`` and ``local``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import msgspec
import numpy as np
import numpy.typing as npt

from appliance.core import events as ev
from appliance.core.chunking import Chunk, chunk_document, chunk_id, embedding_text, text_hash
from appliance.core.config import KnowledgeConfig
from appliance.core.errors import Conflict, NotFound
from appliance.core.types import ChunkHit
from appliance.ingest import UnreadableDocument, discover, read_document
from appliance.ingest.files import read_bytes
from appliance.store import Store
from appliance.store import knowledge as kb
from appliance.store.db import Connection
from appliance.store.vector_index import SignIndex

# Bumped when readers or chunking change in a way that should re-chunk every file on re-add.
PIPELINE_VERSION = 2
MAX_PENDING_WRITES = 4


class Embedder(Protocol):
    """What the knowledge base and intents need of an embedding model (``LocalEmbedder`` fits)."""

    @property
    def dim(self) -> int: ...

    def embed_sync(self, texts: list[str], *, passage: bool = False) -> npt.NDArray[np.float32]:
        """Questions and utterances by default; ``passage`` for documents to be searched."""
        ...

    async def embed(self, texts: list[str], *, passage: bool = False) -> npt.NDArray[np.float32]: ...


FileStatus = Literal["added", "updated", "unchanged", "failed"]


class FileOutcome(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    status: FileStatus
    document_id: str = ""
    chunks: int = 0
    embedded: int = 0
    error: str = ""


class IngestProgress(msgspec.Struct, frozen=True, kw_only=True):
    """Where an ``add_paths`` run stands; handed to the progress callback after every step."""

    files_done: int
    files_total: int
    chunks: int
    embedded: int
    elapsed_s: float
    current: str = ""


class IngestReport(msgspec.Struct, kw_only=True):
    files: list[FileOutcome] = msgspec.field(default_factory=list)
    chunks: int = 0
    embedded: int = 0
    elapsed_s: float = 0.0
    version: int = 0

    def count(self, status: FileStatus) -> int:
        return sum(1 for outcome in self.files if outcome.status == status)

    @property
    def failed(self) -> list[FileOutcome]:
        return [outcome for outcome in self.files if outcome.status == "failed"]


def document_id_for(source: str) -> str:
    return "doc_" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:20]


def embedding_model_id(path: Path) -> str:
    """An id for an embedding model file: its name, size and a hash of its head and tail."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 16))
        handle.seek(max(0, size - (1 << 16)))
        digest.update(handle.read(1 << 16))
    return f"{path.name}:{size}:{digest.hexdigest()[:16]}"


def vector_bytes(vector: npt.NDArray[np.float32]) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


class KnowledgeService:
    def __init__(self, store: Store, embedder: Embedder, config: KnowledgeConfig, *, model_id: str = "default") -> None:
        self.store = store
        self.embedder = embedder
        self.config = config
        self.model_id = model_id
        self._index = SignIndex()

    # -- the KnowledgeBase Protocol ------------------------------------------------------------

    async def version(self) -> int:
        return await self.store.read(kb.kb_version)

    async def warm(self) -> int:
        """Bring the in-memory vector index up to the stored knowledge base now (rather than on
        the next question); the version it holds."""
        return await self.store.read(lambda conn: kb.refresh_index(conn, self._index))

    async def search(self, query: str, k: int, *, mode: kb.SearchMode = "hybrid") -> list[ChunkHit]:
        """The ``k`` best chunks, fused from the BM25 and vector rankings (see ``store.knowledge``)."""
        query = query.strip()
        if not query or k <= 0:
            return []
        vector = None
        if mode != "bm25":
            vector = vector_bytes((await self.embedder.embed([query]))[0])
        config, model = self.config, self.model_id

        def search(conn: Connection) -> list[ChunkHit]:
            # Vectors another embedding model wrote (a node upgraded in place) mean nothing to this
            # one's query: BM25 only until the documents are added again (`appliance kb add`).
            usable = vector if kb.vector_model(conn)[0] in (model, "") else None
            return kb.search_chunks(conn, query, usable, k, candidates=config.candidates,
                                    lexical_weight=config.lexical_weight, mode=mode, index=self._index)

        return await self.store.read(search)

    # -- documents -----------------------------------------------------------------------------

    async def list_documents(self) -> list[kb.DocumentRow]:
        return await self.store.read(kb.list_documents)

    async def chunks(self, document_id: str) -> list[ChunkHit]:
        return await self.store.read(lambda conn: kb.document_chunks(conn, document_id))

    async def remove(self, target: str, *, actor: str = "system", ip: str = "") -> list[kb.DocumentRow]:
        """Remove documents by id, by path (a directory removes everything under it), or by file
        name when exactly one document has it. Raises ``NotFound`` or ``Conflict``."""
        documents = await self.list_documents()
        chosen = [doc for doc in documents if doc.document_id == target]
        if not chosen:
            path = str(Path(target).expanduser().resolve())
            chosen = [doc for doc in documents if doc.source == path or doc.source.startswith(path + os.sep)]
        if not chosen:
            chosen = [doc for doc in documents if Path(doc.source).name == target]
            if len(chosen) > 1:
                names = ", ".join(doc.source for doc in chosen)
                raise Conflict(f"'{target}' names {len(chosen)} documents ({names}); give the full path")
        if not chosen:
            raise NotFound(f"no document in the knowledge base matches '{target}'")
        payloads: list[ev.EventPayload] = []
        for doc in chosen:
            payloads.append(ev.DocumentRemoved(document_id=doc.document_id))
            payloads.append(ev.AuditRecorded(actor=actor, action="kb.remove", target=doc.source,
                                             detail=doc.document_id, ip=ip, before=doc.content_hash))
        await self.store.write(lambda txn: [txn.append(payload) for payload in payloads])
        return chosen

    def _content_hash(self, data: bytes) -> str:
        settings = f"{PIPELINE_VERSION}:{self.config.chunk_chars}:{self.config.chunk_overlap_chars}:{self.model_id}"
        return hashlib.sha256(settings.encode() + b"\0" + data).hexdigest()

    async def add_paths(
        self, paths: Iterable[Path | str], progress: Callable[[IngestProgress], None] | None = None, *,
        actor: str = "system", ip: str = "", force: bool = False,
    ) -> IngestReport:
        """Ingest files and directories (recursively). A file that cannot be read is reported in
        the result as ``failed`` with its reason and skipped; the others go in. ``force``
        re-reads and re-chunks files whose content did not change (a re-index); their unchanged
        chunks still come from the embedding cache."""
        started = time.monotonic()
        files, problems = await asyncio.to_thread(discover, list(paths))
        report = IngestReport(files=[FileOutcome(source=p.path, status="failed", error=p.reason) for p in problems])
        existing = {doc.source: doc for doc in await self.list_documents()}
        writes: list[asyncio.Future[object]] = []

        def tick(current: str = "") -> None:
            if progress is not None:
                progress(IngestProgress(
                    files_done=len(report.files) - len(problems), files_total=len(files), chunks=report.chunks,
                    embedded=report.embedded, elapsed_s=time.monotonic() - started, current=current,
                ))

        tick()
        for path in files:
            source = str(path)
            try:
                outcome = await self._add_file(path, existing.get(source), report, writes, tick, (actor, ip), force)
            except UnreadableDocument as exc:
                outcome = FileOutcome(source=source, status="failed", error=exc.reason)
            report.files.append(outcome)
            tick(source)
        for write in writes:
            await write
        report.elapsed_s = time.monotonic() - started
        report.version = await self.version()
        return report

    async def _add_file(
        self, path: Path, existing: kb.DocumentRow | None, report: IngestReport,
        writes: list[asyncio.Future[object]], tick: Callable[[str], None], by: tuple[str, str], force: bool,
    ) -> FileOutcome:
        source = str(path)
        data = await asyncio.to_thread(read_bytes, path)
        content_hash = self._content_hash(data)
        document_id = document_id_for(source)
        if existing is not None and existing.content_hash == content_hash and not force:
            return FileOutcome(source=source, status="unchanged", document_id=document_id, chunks=existing.chunk_count)
        document = await asyncio.to_thread(read_document, path, data)
        chunks = chunk_document(document, self.config.chunk_chars, self.config.chunk_overlap_chars)
        vectors, embedded = await self._embed_chunks(document.title, chunks, report, lambda: tick(source))
        payload = ev.DocumentUpserted(
            document_id=document_id, source=source, title=document.title, format=document.format,
            content_hash=content_hash, size_bytes=len(data), model=self.model_id, dim=self.embedder.dim,
            chunks=[
                ev.KnowledgeChunk(
                    chunk_id=chunk_id(document_id, chunk), ordinal=chunk.ordinal, section=chunk.section,
                    text=chunk.text, is_qa=chunk.is_qa, answer=chunk.answer, embedding=vector,
                )
                for chunk, vector in zip(chunks, vectors, strict=True)
            ],
        )
        status: FileStatus = "updated" if existing is not None else "added"
        audit = ev.AuditRecorded(actor=by[0], action="kb.add" if existing is None else "kb.update", target=source,
                                 detail=f"{document_id}, {len(chunks)} chunks", ip=by[1],
                                 before=existing.content_hash if existing else "", after=content_hash)
        # Written in the background while the next file is read and embedded (a few at a time).
        writes.append(asyncio.ensure_future(self.store.write(lambda txn: [txn.append(payload), txn.append(audit)])))
        while len(writes) > MAX_PENDING_WRITES:
            await writes.pop(0)
        return FileOutcome(source=source, status=status, document_id=document_id, chunks=len(chunks), embedded=embedded)

    async def _embed_chunks(
        self, title: str, chunks: Sequence[Chunk], report: IngestReport, tick: Callable[[], None],
    ) -> tuple[list[bytes], int]:
        """Vectors (float32 bytes) for ``chunks`` and how many had to be embedded."""
        def on_batch(count: int) -> None:
            report.embedded += count
            tick()

        vectors, embedded = await self.embed_cached([embedding_text(title, chunk) for chunk in chunks], on_batch)
        report.chunks += len(chunks)
        return vectors, embedded

    async def embed_cached(
        self, texts: Sequence[str], on_batch: Callable[[int], None] | None = None,
    ) -> tuple[list[bytes], int]:
        """Vectors for ``texts`` as float32 bytes, embedding (in batches) only those not in the
        cache; and how many were embedded."""
        hashes = [text_hash(text) for text in texts]
        model = self.model_id
        cached = await self.store.read(lambda conn: kb.cached_embeddings(conn, model, hashes))
        missing = list(dict.fromkeys(digest for digest in hashes if digest not in cached))
        by_hash = dict(zip(hashes, texts, strict=True))
        batch = max(self.config.embed_batch, 1)
        fresh: dict[bytes, bytes] = {}
        for start in range(0, len(missing), batch):
            group = missing[start:start + batch]
            vectors = await self.embedder.embed([by_hash[digest] for digest in group], passage=True)
            fresh.update((digest, vector_bytes(vector)) for digest, vector in zip(group, vectors, strict=True))
            if on_batch is not None:
                on_batch(len(group))
        return [cached.get(digest) or fresh[digest] for digest in hashes], len(missing)
