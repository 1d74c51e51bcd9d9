"""Remembers the embeddings of recent single texts: one turn embeds the visitor's question once,
though the intent classifier and the knowledge-base search both need it."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from appliance.local_model.embedder import LocalEmbedder

Vectors = npt.NDArray[np.float32]


class RecentEmbeddings:
    def __init__(self, embedder: LocalEmbedder, entries: int = 2048) -> None:
        self._embedder = embedder
        self._entries = entries
        self._recent: OrderedDict[str, Vectors] = OrderedDict()
        self._lock = threading.Lock()  # embed_sync runs on worker threads

    @property
    def dim(self) -> int:
        return self._embedder.dim

    def _get(self, texts: list[str]) -> Vectors | None:
        if len(texts) != 1:
            return None
        with self._lock:
            found = self._recent.get(texts[0])
            if found is not None:
                self._recent.move_to_end(texts[0])
            return found

    def _put(self, texts: list[str], vectors: Vectors) -> Vectors:
        if len(texts) == 1:
            with self._lock:
                self._recent[texts[0]] = vectors
                while len(self._recent) > self._entries:
                    self._recent.popitem(last=False)
        return vectors

    def embed_sync(self, texts: list[str], *, passage: bool = False) -> Vectors:
        if passage:  # documents are embedded once, at ingest: nothing to remember
            return self._embedder.embed_sync(texts, passage=True)
        found = self._get(texts)
        return found if found is not None else self._put(texts, self._embedder.embed_sync(texts))

    async def embed(self, texts: list[str], *, passage: bool = False) -> Vectors:
        if passage:
            return await self._embedder.embed(texts, passage=True)
        found = self._get(texts)
        if found is not None:
            return found
        return self._put(texts, await self._embedder.embed(texts))
