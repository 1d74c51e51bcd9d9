"""Where the built-in models live, and how a model file is checked before it is loaded."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Literal

from appliance.core.errors import Unavailable

SETUP_COMMAND = "python build/assemble_models.py"
CHAT_FILE = "chat.gguf"
SMALL_CHAT_FILE = "chat-small.gguf"
EMBED_FILE = "embed.gguf"
MANIFEST_FILE = "manifest.json"


class ModelMissing(Unavailable):
    """A model file the configuration needs is absent (or unusable, see ``ModelCorrupt``)."""

    def __init__(self, path: Path, problem: str = "is missing") -> None:
        super().__init__(
            f"model file {path} {problem}; run `{SETUP_COMMAND}` to assemble the built-in models, "
            "or point [models] chat_path / embedding_path at a GGUF file"
        )
        self.path = path


class ModelCorrupt(ModelMissing):
    pass


def builtin_model_dir() -> Path:
    """The folder ``build/assemble_models.py`` fills; PyInstaller bundles it at the same package path."""
    return Path(__file__).parent / "models"


def builtin_chat_path(choice: Literal["standard", "small"] = "standard") -> Path:
    """The built-in chat model's file: the standard one (Qwen2.5-Coder-1.5B-Instruct) or the small one.

    The one-file binary carries the small model inside; the standard one (1.1 GB) lies beside it in
    ``models/``, so a start does not unpack a gigabyte into the temporary folder.
    """
    name = SMALL_CHAT_FILE if choice == "small" else CHAT_FILE
    bundled = builtin_model_dir() / name
    if bundled.is_file() or not getattr(sys, "frozen", False):
        return bundled
    return Path(sys.executable).resolve().parent / "models" / name


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_model(path: Path, expected_sha256: str) -> None:
    """Raise ``ModelMissing`` or ``ModelCorrupt`` unless ``path`` has the expected SHA-256.

    Blocking (hashing ~100 MB takes ~0.1 s): call it from a worker thread or before the loop starts.
    """
    if not path.is_file():
        raise ModelMissing(path)
    actual = sha256_file(path)
    if actual != expected_sha256.lower():
        raise ModelCorrupt(path, f"is corrupt (sha256 {actual}, expected {expected_sha256})")
