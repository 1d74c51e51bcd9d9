"""Sentence embeddings from a GGUF embedding model (multilingual-e5-small by default) via llama.cpp.

A model file may say how its texts are to be prepared, in ``appliance.embedding.*`` keys (the
built-in e5 does): ``query_prefix`` / ``passage_prefix`` go before questions and documents, and
``normalize`` (``NFKC``) is the Unicode normalisation its tokenizer expects. Files without them
(any other GGUF) get the texts as they are.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import llama_cpp
import numpy as np
import numpy.typing as npt

from appliance.core.errors import Unavailable
from appliance.local_model.paths import ModelCorrupt, ModelMissing

Vectors = npt.NDArray[np.float32]

# Texts are packed into one llama batch up to this many tokens. llama.cpp attends across the whole
# batch (masked), so cost grows with its square: measured on 1 thread, packing ~4 short queries
# saves ~20% per text, while 512-token batches of mixed texts cost twice as much as one-by-one.
PACK_TOKENS = 64


class LocalEmbedder:
    """One llama.cpp embedding context.

    Thread-safety: a llama context must not be used by two threads at once. ``embed_sync`` holds a
    lock for the whole call, and ``embed`` runs it on this embedder's single worker thread, so the
    event loop never blocks and calls never overlap. ctypes releases the GIL during inference.
    """

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self._llm = llm
        metadata = llm.metadata
        self.query_prefix = metadata.get("appliance.embedding.query_prefix", "")
        self.passage_prefix = metadata.get("appliance.embedding.passage_prefix", "")
        form = metadata.get("appliance.embedding.normalize", "")
        self._form = form if form in ("NFC", "NFKC") else ""
        self._dim = int(llm.n_embd())
        self._n_ctx = int(llm.n_ctx())
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-embedder")

    @classmethod
    def load(cls, path: Path, threads: int = 1, n_ctx: int = 512) -> LocalEmbedder:
        """Blocking (tens of milliseconds): run it in a thread from async code.

        ``n_batch`` equals ``n_ctx``: an encoder must see a whole sequence in one batch, and longer
        texts are truncated to ``n_ctx`` tokens (BERT has no positions beyond its trained 512).
        """
        if not path.is_file():
            raise ModelMissing(path)
        try:
            llm = llama_cpp.Llama(
                model_path=str(path), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                n_ctx=n_ctx, n_batch=n_ctx, n_ubatch=n_ctx, n_threads=threads, n_threads_batch=threads,
                verbose=False,
            )
        except ValueError as exc:  # llama-cpp-python's "Failed to load model from file"
            raise ModelCorrupt(path, f"cannot be loaded as an embedding model ({exc})") from exc
        return cls(llm)

    @property
    def dim(self) -> int:
        return self._dim

    def prepare(self, text: str, *, passage: bool = False) -> str:
        """The text as the model wants it: normalised, with its query or passage prefix."""
        if self._form:
            text = unicodedata.normalize(self._form, text)  # type: ignore[arg-type]
        return (self.passage_prefix if passage else self.query_prefix) + text

    def embed_sync(self, texts: list[str], *, passage: bool = False) -> Vectors:
        """L2-normalised float32 vectors, shape ``(len(texts), dim)``; blocking.

        ``passage`` says the texts are documents to search (else questions or utterances, which
        are also what intents compare). Short texts are packed several to a llama batch (see
        ``PACK_TOKENS``); texts longer than the context are cut to it.
        """
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        texts = [self.prepare(text, passage=passage) for text in texts]
        rows: list[list[float]] = []
        with self._lock:
            try:
                for group in self._packs(texts):
                    rows.extend(self._llm.embed(group, normalize=False, truncate=True))
            except (RuntimeError, ValueError) as exc:
                raise Unavailable(f"local embedding failed: {exc}") from exc
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), self._dim)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.maximum(norms, np.float32(1e-12))
        return vectors

    def _packs(self, texts: list[str]) -> list[list[str]]:
        packs: list[list[str]] = []
        used = PACK_TOKENS
        for text in texts:
            n = min(len(self._llm.tokenize(text.encode(), add_bos=True)), self._n_ctx)
            if used + n > PACK_TOKENS:
                packs.append([])
                used = 0
            packs[-1].append(text)
            used += n
        return packs

    async def embed(self, texts: list[str], *, passage: bool = False) -> Vectors:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(self.embed_sync, list(texts),
                                                                            passage=passage))

    def close(self) -> None:
        """Wait for the running call, then free the model."""
        self._executor.shutdown(wait=True)
        with self._lock:
            self._llm.close()
