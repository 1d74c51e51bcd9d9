"""Knowledge-base scale: ingest rate and query latency at 10k and 100k chunks.

    .venv/bin/python -m bench.kb_scale [--sizes 10000 100000] [--embedder real|hash] [--queries 300]

Generates a varied synthetic corpus locally (Markdown manuals in English and Chinese, HTML
pages, Q&A spreadsheets; four product domains, randomised wording and numbers), ingests it
through ``KnowledgeService.add_paths`` into a fresh store, growing it to each size in turn, and
after each size times ``search(query, 5)`` one query at a time, the query embedding included.

``--embedder real`` embeds every chunk with the built-in model (one llama.cpp thread): the
end-to-end rate, bounded by the model (about 40-50 chunks/s on two cores). ``--embedder hash``
replaces the chunk embeddings by a hashing stand-in of the same dimension, to measure what the
store and its indexes sustain (parse, chunk, FTS5 x2, vec0, event log); queries are always
embedded by the real model. Prints one JSON object (last line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from appliance.core.config import KnowledgeConfig
from appliance.knowledge import KnowledgeService
from appliance.local_model import EMBED_FILE, LocalEmbedder, builtin_model_dir
from appliance.store import Store
from appliance.store import knowledge as kb

DOMAINS = {
    "bank": (["debit card", "credit card", "savings account", "mortgage", "wire transfer", "overdraft",
              "mobile app", "cheque book"], ["freeze", "activate", "replace", "close", "upgrade", "dispute"]),
    "telecom": (["fibre router", "SIM card", "roaming plan", "voicemail", "data bundle", "landline",
                 "set-top box", "5G modem"], ["reset", "activate", "port", "cancel", "upgrade", "configure"]),
    "retail": (["kettle", "vacuum cleaner", "blender", "desk lamp", "printer", "heater", "gift card",
                "loyalty account"], ["return", "exchange", "repair", "register", "refund", "track"]),
    "travel": (["flight booking", "hotel room", "rail pass", "travel insurance", "baggage allowance",
                "seat upgrade", "lounge access", "car rental"], ["change", "cancel", "extend", "claim", "rebook",
                                                                    "refund"]),
}
ZH_NOUNS = ["借记卡", "信用卡", "储蓄账户", "宽带路由器", "手机卡", "国际漫游", "电水壶", "吸尘器", "机票", "酒店房间",
            "行李额度", "旅行保险", "积分账户", "礼品卡", "打印机", "房贷"]
ZH_VERBS = ["挂失", "激活", "办理", "退订", "升级", "退款", "改签", "维修", "注销", "查询"]
TEMPLATES = [
    "To {verb} your {noun}, open the app, choose {noun} settings and follow the {n} steps shown on screen.",
    "Customers who {verb} a {noun} within {d} days pay no fee; after that a charge of {n} USD applies.",
    "If you cannot {verb} the {noun} online, visit a branch with photo ID or call us between {n}:00 and {d}:00.",
    "The {noun} policy changed on {d} March: requests to {verb} now take {n} working days to process.",
    "We may ask for the reference number printed on your {noun} before we {verb} it, for your security.",
    "A {noun} that was bought in batch {b} can be {verb}ed free of charge until the end of the year.",
    "Premium members can {verb} their {noun} at any time; standard members can do so {n} times a year.",
    "Note that you cannot {verb} a {noun} while a previous request is pending, which usually lasts {d} hours.",
]
ZH_TEMPLATES = [
    "如需{verb}{noun}，请打开App进入{noun}设置，按屏幕提示完成{n}个步骤。",
    "在{d}天内{verb}{noun}免收手续费，超过期限收取{n}元服务费。",
    "无法在线{verb}{noun}时，请携带身份证件前往网点，或在{n}点至{d}点之间致电客服。",
    "自{d}月起，{noun}{verb}申请需要{n}个工作日处理，请提前办理。",
    "为保障您的安全，{verb}{noun}前我们可能会核对卡面上的参考编号{b}。",
]


def _sentence(rng: random.Random, chinese: bool, noun: str, verb: str) -> str:
    fill = {"noun": noun, "verb": verb, "n": rng.randint(2, 48), "d": rng.randint(3, 90), "b": rng.randint(100, 999)}
    return rng.choice(ZH_TEMPLATES if chinese else TEMPLATES).format(**fill)


def write_corpus(directory: Path, chunks: int, *, start: int = 0, seed: int = 11) -> int:
    """Write files holding about ``chunks`` chunks (one section ≈ one chunk); returns files written."""
    rng = random.Random(seed + start)
    directory.mkdir(parents=True, exist_ok=True)
    written, index = 0, start
    while written < chunks:
        domain = list(DOMAINS)[index % len(DOMAINS)]
        nouns, verbs = DOMAINS[domain]
        kind = index % 10
        count = min(rng.randint(10, 30), chunks - written)
        if kind == 9:  # a Q&A spreadsheet
            rows = ["question,answer"]
            for _ in range(count):
                noun, verb = rng.choice(nouns), rng.choice(verbs)
                rows.append(f"How do I {verb} my {noun}?,\"{_sentence(rng, False, noun, verb)}\"")
            (directory / f"{index:06d}-{domain}-faq.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
        elif kind in (4, 8):  # Chinese manuals
            lines = [f"# {domain}服务手册 {index}", ""]
            for section in range(count):
                noun, verb = rng.choice(ZH_NOUNS), rng.choice(ZH_VERBS)
                body = "".join(_sentence(rng, True, noun, verb) for _ in range(rng.randint(4, 8)))
                lines += [f"## {noun}{verb}（{section + 1}）", "", body, ""]
            (directory / f"{index:06d}-{domain}-zh.md").write_text("\n".join(lines), encoding="utf-8")
        elif kind == 6:  # an HTML page
            parts = [f"<html><head><title>{domain.title()} help {index}</title></head><body>"]
            for section in range(count):
                noun, verb = rng.choice(nouns), rng.choice(verbs)
                body = " ".join(_sentence(rng, False, noun, verb) for _ in range(rng.randint(4, 7)))
                parts.append(f"<h2>{verb.title()} a {noun} ({section + 1})</h2><p>{body}</p>")
            (directory / f"{index:06d}-{domain}.html").write_text("".join(parts) + "</body></html>", encoding="utf-8")
        else:
            lines = [f"# {domain.title()} handbook {index}", ""]
            for section in range(count):
                noun, verb = rng.choice(nouns), rng.choice(verbs)
                body = " ".join(_sentence(rng, False, noun, verb) for _ in range(rng.randint(4, 7)))
                lines += [f"## How to {verb} a {noun} ({section + 1})", "", body, ""]
            (directory / f"{index:06d}-{domain}.md").write_text("\n".join(lines), encoding="utf-8")
        written += count
        index += 1
    return index


def queries(count: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        if i % 4 == 3:
            out.append(f"{rng.choice(ZH_NOUNS)}怎么{rng.choice(ZH_VERBS)}")
        else:
            nouns, verbs = DOMAINS[rng.choice(list(DOMAINS))]
            out.append(f"how can I {rng.choice(verbs)} my {rng.choice(nouns)}")
    return out


class HashEmbedder:
    """A stand-in for ingest-only measurements: deterministic unit vectors of the model's dimension."""

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def embed_sync(self, texts: list[str], *, passage: bool = False) -> np.ndarray:
        rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim) for t in texts]
        vectors = np.array(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    async def embed(self, texts: list[str], *, passage: bool = False) -> np.ndarray:
        return self.embed_sync(texts)


def _percentiles(values: list[float]) -> dict[str, float]:
    array = np.array(values)
    return {"p50_ms": round(float(np.percentile(array, 50)), 2), "p99_ms": round(float(np.percentile(array, 99)), 2)}


async def run(sizes: list[int], embedder_kind: str, query_count: int, workdir: Path) -> dict[str, Any]:
    real = LocalEmbedder.load(builtin_model_dir() / EMBED_FILE, threads=1)
    ingest_embedder = real if embedder_kind == "real" else HashEmbedder(real.dim)
    store = Store.open(workdir / "kb.db", "bench", synchronous="NORMAL")
    config = KnowledgeConfig()
    ingest = KnowledgeService(store, ingest_embedder, config, model_id=f"bench-{embedder_kind}")  # type: ignore[arg-type]
    search = KnowledgeService(store, real, config, model_id=f"bench-{embedder_kind}")
    results: list[dict[str, Any]] = []
    have, next_file = 0, 0
    try:
        for size in sizes:
            batch = workdir / f"corpus-{size}"
            generated = time.perf_counter()
            next_file = write_corpus(batch, size - have, start=next_file)
            generated = time.perf_counter() - generated
            started = time.perf_counter()
            report = await ingest.add_paths([batch])
            elapsed = time.perf_counter() - started
            have += report.chunks
            texts = queries(query_count)
            await search.search(texts[0], 5)
            total, store_only = [], []
            for text in texts:
                begin = time.perf_counter()
                await search.search(text, 5)
                total.append((time.perf_counter() - begin) * 1000)
            vector = (await real.embed([texts[0]]))[0].astype("<f4").tobytes()
            for text in texts:
                begin = time.perf_counter()
                await store.read(lambda conn, t=text, v=vector: kb.search_chunks(conn, t, v, 5))
                store_only.append((time.perf_counter() - begin) * 1000)
            results.append({
                "chunks": have, "files": report.count("added"), "embedder": embedder_kind,
                "ingest_s": round(elapsed, 1), "ingest_chunks_per_s": round(report.chunks / elapsed, 1),
                "query": _percentiles(total), "query_store_only": _percentiles(store_only),
                "db_mb": round((workdir / "kb.db").stat().st_size / 1e6, 1), "corpus_s": round(generated, 1),
            })
            print(json.dumps(results[-1]), flush=True)
    finally:
        store.close()
        real.close()
    return {"benchmark": "kb_scale", "queries": query_count, "sizes": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--embedder", choices=["real", "hash"], default="real")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the corpus and database here")
    args = parser.parse_args()
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run(sorted(args.sizes), args.embedder, args.queries, args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="kb-scale-") as scratch:
            result = asyncio.run(run(sorted(args.sizes), args.embedder, args.queries, Path(scratch)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
