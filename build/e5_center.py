"""Compute the centring vectors of the built-in embedding model: ``build/e5_center.json``.

    .venv/bin/python build/e5_center.py appliance/local_model/models/embed.gguf

e5's sentence vectors share a large common component (any two texts score a cosine of 0.7–0.9),
which squeezes every similarity threshold into a narrow band, and that component differs between
scripts: Chinese texts share more of it with each other than English texts do. So there is one
centre per script and per prefix: the mean vector of about a thousand of the model's own
vocabulary pieces of that script (CJK pieces; Latin pieces), each embedded alone. The embedder
subtracts the mix of the two centres that matches a text's share of CJK characters and
re-normalises, which spreads cosines out the same way in both languages (paraphrases ~0.5–0.8,
unrelated texts ~0.0–0.25) without depending on any corpus. The result is committed, so assembly
stays byte-for-byte reproducible; ``e5_gguf.py`` writes it into the GGUF's metadata.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

OUT = Path(__file__).with_name("e5_center.json")
FIRST_PIECE = 1000  # below this: control, byte and punctuation pieces
PER_SCRIPT = 1000
SCRIPTS = {"cjk": re.compile(r"[\u3400-\u9fff\uf900-\ufaff]"), "latin": re.compile(r"[A-Za-z]")}


def main(model: Path) -> None:
    import llama_cpp
    import numpy as np

    llm = llama_cpp.Llama(model_path=str(model), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                          n_ctx=512, n_batch=512, n_ubatch=512, n_threads=2, verbose=False)
    pieces = [llm.detokenize([i]).decode("utf-8", "ignore").strip() for i in range(FIRST_PIECE, llm.n_vocab())]
    cjk = [piece for piece in pieces if SCRIPTS["cjk"].search(piece)]
    latin = [piece for piece in pieces if SCRIPTS["latin"].search(piece) and not SCRIPTS["cjk"].search(piece)]
    chosen = {script: found[:: max(1, len(found) // PER_SCRIPT)] for script, found in (("cjk", cjk), ("latin", latin))}
    centers: dict[str, dict[str, list[float]]] = {}
    for kind, prefix in (("query", "query: "), ("passage", "passage: ")):
        centers[kind] = {}
        for script, texts in chosen.items():
            vectors = np.array([llm.embed(prefix + text) for text in texts], dtype=np.float64)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            centers[kind][script] = [round(float(x), 6) for x in vectors.mean(axis=0)]
    counts = {script: len(texts) for script, texts in chosen.items()}
    OUT.write_text(json.dumps({"pieces": counts, **centers}) + "\n", encoding="utf-8")
    print(f"wrote {OUT} from {counts} pieces")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
