"""Session fixtures: the real built-in models, assembled once (a no-op when already in place)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.local_model import EMBED_FILE, SMALL_CHAT_FILE, LocalChat, LocalEmbedder, builtin_model_dir

ROOT = Path(__file__).resolve().parents[2]
ASSEMBLER = ROOT / "build" / "assemble_models.py"


@pytest.fixture(scope="session")
def models_dir() -> Path:
    subprocess.run([sys.executable, str(ASSEMBLER)], check=True)
    return builtin_model_dir()


@pytest.fixture(scope="session")
def embedder(models_dir: Path) -> Iterator[LocalEmbedder]:
    model = LocalEmbedder.load(models_dir / EMBED_FILE, threads=1)
    yield model
    model.close()


@pytest.fixture(scope="session")
def chat(models_dir: Path) -> Iterator[LocalChat]:
    """The small model: these tests are about the worker's mechanics, not what it says."""
    model = LocalChat.load(models_dir / SMALL_CHAT_FILE, threads=2, n_ctx=2048)
    yield model
    model.close()
