"""Ready-made parts for embedding the engine in your own service (see ``AgentBuilder``)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Self

from appliance.core import builder
from appliance.core.config import KnowledgeConfig
from appliance.core.errors import InputError
from appliance.core.ports import KnowledgeBase
from appliance.core.routing import ModelSpec
from appliance.core.types import ChunkHit
from appliance.knowledge import KnowledgeService, embedding_model_id
from appliance.knowledge.service import IngestReport
from appliance.local_model.chat import LocalChat
from appliance.local_model.embedder import LocalEmbedder
from appliance.local_model.memo import RecentEmbeddings
from appliance.local_model.paths import EMBED_FILE, builtin_chat_path, builtin_model_dir
from appliance.local_model.provider import BuiltinChatProvider
from appliance.providers.openai import OpenAIProvider, make_session
from appliance.store import Store


def openai_model(
    base_url: str, model: str, *, api_key: str | None = None, name: str = "", vision: bool = False,
    timeout_s: float = 30.0,
) -> OpenAIProvider:
    """An OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, OpenAI, DeepSeek, Qwen...).

    Call it inside a running event loop: it opens a pooled HTTP session.
    """
    spec = ModelSpec(name=name or model.replace("/", "-")[:64], base_url=base_url, model=model, vision=vision,
                     timeout_s=timeout_s)
    return OpenAIProvider(spec, make_session(), api_key, owns_session=True)


def builtin_model(path: Path | None = None, *, threads: int = 2, n_ctx: int = 2048) -> BuiltinChatProvider:
    """The built-in Qwen2.5-Coder-1.5B-Instruct (or any GGUF chat model), on its own worker thread."""
    return BuiltinChatProvider(LocalChat.load(path or builtin_chat_path(), threads=threads, n_ctx=n_ctx))


class LocalKnowledgeBase:
    """Files and folders ingested into a SQLite store, searched with the server's hybrid retrieval
    (BM25 and vectors from the built-in multilingual embedding model, fused), so replies cite them.

    ``store`` names the database file; unchanged files are skipped when it is opened again. With
    no ``store`` the knowledge base lives in a temporary folder removed by :meth:`aclose`. The
    files are ingested on :meth:`open`, or on the first search if it was not called; a file that
    cannot be read (missing, malformed, encrypted) raises :class:`InputError` naming it.
    """

    def __init__(
        self, paths: list[str | Path], *, store: str | Path | None = None, embedding_model: Path | None = None,
        threads: int = 1, config: KnowledgeConfig | None = None,
    ) -> None:
        if not paths:
            raise InputError("a knowledge base needs at least one file or folder")
        self.paths = [Path(p) for p in paths]
        self._store_path = Path(store) if store is not None else None
        self._embedding_model = embedding_model or builtin_model_dir() / EMBED_FILE
        self._threads = threads
        self._config = config or KnowledgeConfig()
        self._temporary: Path | None = None
        self._store: Store | None = None
        self._embedder: LocalEmbedder | None = None
        self._service: KnowledgeService | None = None
        self._opening: asyncio.Task[IngestReport] | None = None
        self.report: IngestReport | None = None

    async def open(self) -> IngestReport:
        """Load the embedding model and ingest the files (once); what went in."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())
        return await asyncio.shield(self._opening)

    async def _open(self) -> IngestReport:
        if self._store_path is None:
            self._temporary = Path(tempfile.mkdtemp(prefix="appliance-kb-"))
        path = self._store_path or self._temporary / "knowledge.db"  # type: ignore[operator]
        self._store = await asyncio.to_thread(Store.open, path, "sdk", read_connections=2)
        self._embedder = await asyncio.to_thread(LocalEmbedder.load, self._embedding_model, threads=self._threads)
        model_id = await asyncio.to_thread(embedding_model_id, self._embedding_model)
        self._service = KnowledgeService(self._store, RecentEmbeddings(self._embedder), self._config,
                                         model_id=model_id)
        report = await self._service.add_paths(self.paths, actor="sdk")
        if report.failed:
            raise InputError("; ".join(f"{f.source}: {f.error}" for f in report.failed))
        self.report = report
        return report

    async def _ready(self) -> KnowledgeService:
        await self.open()
        assert self._service is not None
        return self._service

    async def version(self) -> int:
        return await (await self._ready()).version()

    async def search(self, query: str, k: int) -> list[ChunkHit]:
        return await (await self._ready()).search(query, k)

    async def aclose(self) -> None:
        """Close the store and free the model; a temporary knowledge base is deleted."""
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        if self._embedder is not None:
            await asyncio.to_thread(self._embedder.close)
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
        self._embedder = self._store = self._service = self._opening = None


class AgentBuilder(builder.AgentBuilder):
    """``appliance.AgentBuilder``: the engine's builder, whose knowledge base may be files."""

    def with_knowledge_base(self, *sources: KnowledgeBase | str | Path, store: str | Path | None = None) -> Self:
        """A :class:`KnowledgeBase`, or files and folders ingested into a :class:`LocalKnowledgeBase`
        (in ``store``, or a temporary one); the agent closes it in ``aclose``."""
        if len(sources) == 1 and not isinstance(sources[0], (str, Path)):
            return super().with_knowledge_base(sources[0])
        paths = [s for s in sources if isinstance(s, (str, Path))]
        if len(paths) != len(sources):
            raise InputError("with_knowledge_base takes one KnowledgeBase, or file and folder paths")
        return super().with_knowledge_base(LocalKnowledgeBase(paths, store=store))
