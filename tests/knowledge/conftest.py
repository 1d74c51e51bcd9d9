"""The real built-in embedding model, assembled once per session (a no-op when in place)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.local_model import EMBED_FILE, LocalEmbedder, builtin_model_dir

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def embed_model() -> Path:
    path = builtin_model_dir() / EMBED_FILE
    if not path.is_file():
        subprocess.run([sys.executable, str(ROOT / "build" / "assemble_models.py")], check=True)
    return path


@pytest.fixture(scope="session")
def real_embedder(embed_model: Path) -> Iterator[LocalEmbedder]:
    model = LocalEmbedder.load(embed_model, threads=1)
    yield model
    model.close()


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: LocalEmbedder) -> None:
        self.inner = inner
        self.texts = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_sync(self, texts: list[str], *, passage: bool = False) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed_sync(texts, passage=passage)

    async def embed(self, texts: list[str], *, passage: bool = False) -> np.ndarray:
        self.texts += len(texts)
        return await self.inner.embed(texts, passage=passage)


@pytest.fixture
def counting(real_embedder: LocalEmbedder) -> CountingEmbedder:
    return CountingEmbedder(real_embedder)
