"""Sentence embeddings from a GGUF embedding model (multilingual-e5-small by default) via llama.cpp.

A model file may say how its texts are to be prepared, in ``appliance.embedding.*`` keys (the
built-in e5 does): ``query_prefix`` / ``passage_prefix`` go before questions and documents, and
``normalize`` (``NFKC``) is the Unicode normalisation its tokenizer expects, and
``query_center`` / ``passage_center`` (JSON objects ``{"cjk": [...], "latin": [...]}``) are
centres subtracted from the vectors before they are normalised again, mixed by the text's share
of CJK characters; that spreads out the cosines of a model whose vectors share a common
direction, alike in both scripts (see build/e5_center.py). Files without them (any other GGUF)
get the texts and vectors as they are.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
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
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]+")


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
        self._centers = {kind: _center(metadata.get(f"appliance.embedding.{kind}_center", ""), int(llm.n_embd()))
                         for kind in ("query", "passage")}
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
        share = np.array([[cjk_share(text)] for text in texts], dtype=np.float32)
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
        if (centers := self._centers["passage" if passage else "query"]) is not None:
            center = share * centers[0] + (1 - share) * centers[1]
            vectors = vectors / np.maximum(norms, np.float32(1e-12)) - center
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


def cjk_share(text: str) -> float:
    """CJK characters among CJK characters and Latin words (½ for text with neither)."""
    cjk, latin = len(_CJK.findall(text)), len(_LATIN_WORD.findall(text))
    return cjk / (cjk + latin) if cjk + latin else 0.5


def _center(text: str, dim: int) -> tuple[Vectors, Vectors] | None:
    """The ``(cjk, latin)`` centres a metadata value holds, or None when it holds none for ``dim``."""
    try:
        value = json.loads(text) if text else None
        centers = tuple(np.asarray(value[script], dtype=np.float32) for script in ("cjk", "latin")) if value else ()
    except (ValueError, TypeError, KeyError):
        return None
    if len(centers) != 2 or any(center.shape != (dim,) for center in centers):
        return None
    return centers[0], centers[1]
