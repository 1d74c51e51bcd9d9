"""``appliance eval ...``: measure the intent classifier and retrieval on labelled data.

Both need no config: they use the built-in embedding model (or ``--embedding-model``) and, for
retrieval, a fresh temporary store. Progress goes to stderr; the last line of stdout is one JSON
object whose field names scripts rely on (see ``issues show 4``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from appliance.commands._progress import IngestBar
from appliance.core.baselines import CharacterBM25, logistic_regression
from appliance.core.config import KnowledgeConfig
from appliance.core.errors import InputError
from appliance.core.intents import IntentModel
from appliance.knowledge import KnowledgeService, embedding_model_id, read_examples_csv
from appliance.local_model import EMBED_FILE, LocalEmbedder, builtin_model_dir
from appliance.store import Store
from appliance.store.knowledge import SearchMode


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("eval", help="evaluate intents or retrieval on labelled data (prints JSON)")
    parser.add_argument("--embedding-model", type=Path, default=None, help="GGUF embedding model (default: built-in)")
    kinds = parser.add_subparsers(dest="eval_command", metavar="WHAT", required=True)

    intents = kinds.add_parser("intents", help="train on TRAIN.csv, test on TEST.csv (header text,label)")
    intents.add_argument("--train", type=Path, required=True)
    intents.add_argument("--test", type=Path, required=True)
    intents.set_defaults(run=run_intents)

    retrieval = kinds.add_parser("retrieval", help="ingest --kb into a temporary store and score --queries")
    retrieval.add_argument("--kb", type=Path, required=True, nargs="+", help="files or directories to ingest")
    retrieval.add_argument("--queries", type=Path, required=True, help="CSV with header query,expected")
    retrieval.add_argument("--k", type=int, default=5)
    retrieval.add_argument("--mode", choices=["hybrid", "bm25", "vector"], default="hybrid")
    retrieval.add_argument("--compare", action="store_true", help="also report bm25-only and vector-only")
    retrieval.set_defaults(run=run_retrieval)


def _model_path(args: argparse.Namespace) -> Path:
    return args.embedding_model or builtin_model_dir() / EMBED_FILE


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values), q)), 3) if values else 0.0


def _read_rows(path: Path, columns: tuple[str, str]) -> list[tuple[str, str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not set(columns) <= {name.strip() for name in reader.fieldnames}:
        raise InputError(f"{path}: needs a header row with columns {','.join(columns)}")
    return [(row[columns[0]].strip(), row[columns[1]].strip()) for row in reader
            if (row.get(columns[0]) or "").strip()]


def run_intents(args: argparse.Namespace) -> int:
    train = read_examples_csv(args.train)
    test = _read_rows(args.test, ("text", "label"))
    if not train:
        raise InputError(f"{args.train}: no examples")
    path = _model_path(args)
    # One llama.cpp thread, as a server runs it: on a busy two-core machine more threads spin
    # against each other and are several times slower.
    bulk = LocalEmbedder.load(path, threads=1)
    texts = [text for text, _ in train]
    vectors = []
    started = time.monotonic()
    for start in range(0, len(texts), 64):
        vectors.append(bulk.embed_sync(texts[start:start + 64]))
        print(f"\rembedding training examples {min(start + 64, len(texts))}/{len(texts)}", end="", file=sys.stderr)
    print(f" ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    started = time.monotonic()
    model = IntentModel.train(texts, [label for _, label in train], np.vstack(vectors))
    train_s = time.monotonic() - started
    print(f"trained on {len(train)} examples, {len(model.labels)} intents in {train_s:.1f} s", file=sys.stderr)

    embedder = bulk
    embedder.embed_sync([texts[0]])  # warm-up
    known = set(model.labels)
    closed = correct = in_scope_correct = oos = oos_caught = 0
    latencies: list[float] = []
    math_latencies: list[float] = []
    test_vectors = []
    for text, label in test:
        begin = time.perf_counter()
        vector = embedder.embed_sync([text])[0]
        embedded = time.perf_counter()
        test_vectors.append(vector)
        prediction = model.predict(text, vector)
        done = time.perf_counter()
        latencies.append((done - begin) * 1000)
        math_latencies.append((done - embedded) * 1000)
        if label in known:
            closed += 1
            correct += prediction.label == label
            in_scope_correct += prediction.label == label and prediction.in_scope
        elif label == "oos":
            oos += 1
            oos_caught += not prediction.in_scope
    embedder.close()
    baseline = logistic_regression(np.vstack(vectors), [label for _, label in train], np.vstack(test_vectors))
    baseline_correct = sum(guess == label for guess, (_, label) in zip(baseline, test, strict=True) if label in known)
    result: dict[str, Any] = {
        "accuracy": round(correct / closed, 4) if closed else None,
        "in_scope_accuracy": round(in_scope_correct / closed, 4) if closed else None,
        "oos_recall": round(oos_caught / oos, 4) if oos else None,
        "p50_ms": _percentile(latencies, 50),
        "p99_ms": _percentile(latencies, 99),
        "n_train": len(train),
        "n_test": len(test),
        "train_s": round(train_s, 2),
        "classifier_p50_ms": _percentile(math_latencies, 50),  # without the embedding
        "classifier_p99_ms": _percentile(math_latencies, 99),
        # The out-of-scope gate learned from held-out training examples.
        "gate": {"confidence": model.gate.confidence, "similarity": model.gate.similarity},
        # The same embeddings, a plain softmax regression, no out-of-scope detection.
        "baselines": {"logistic_regression": {"accuracy": round(baseline_correct / closed, 4) if closed else None}},
    }
    print(json.dumps(result))
    return 0


class _Scores:
    def __init__(self) -> None:
        self.first = self.reciprocal = 0.0
        self.found = 0

    def add(self, documents: list[str], expected: str) -> None:
        rank = next((i for i, document in enumerate(documents, start=1) if expected.lower() in document.lower()),
                    None)
        if rank is not None:
            self.found += 1
            self.first += rank == 1
            self.reciprocal += 1 / rank

    def summary(self, n: int) -> dict[str, float]:
        return {"recall_at_1": round(self.first / n, 4), "recall_at_k": round(self.found / n, 4),
                "mrr": round(self.reciprocal / n, 4)}


async def _character_bm25(service: KnowledgeService, queries: list[tuple[str, str]], k: int) -> dict[str, Any]:
    """The plain baseline on the same chunks: character BM25 (see ``core.baselines``)."""
    chunks = [hit for document in await service.list_documents() for hit in await service.chunks(document.document_id)]
    index = CharacterBM25([f"{hit.section}\n{hit.text}\n{hit.answer}" for hit in chunks])
    scores = _Scores()
    for query, expected in queries:
        scores.add([chunks[i].document for i in index.rank(query)[:k]], expected)
    return {**scores.summary(len(queries)), "k": k}


async def _score_retrieval(
    service: KnowledgeService, queries: list[tuple[str, str]], k: int, mode: SearchMode,
) -> dict[str, Any]:
    await service.search(queries[0][0], k, mode=mode)  # warm-up
    scores = _Scores()
    latencies: list[float] = []
    for query, expected in queries:
        begin = time.perf_counter()
        hits = await service.search(query, k, mode=mode)
        latencies.append((time.perf_counter() - begin) * 1000)
        scores.add([hit.document for hit in hits], expected)
    n = len(queries)
    return {
        **scores.summary(n), "p99_ms": _percentile(latencies, 99), "p50_ms": _percentile(latencies, 50), "k": k,
        "mode": mode, "n_queries": n,
    }


def run_retrieval(args: argparse.Namespace) -> int:
    queries = _read_rows(args.queries, ("query", "expected"))
    if not queries:
        raise InputError(f"{args.queries}: no queries")
    path = _model_path(args)
    embedder = LocalEmbedder.load(path, threads=1)
    with tempfile.TemporaryDirectory(prefix="appliance-eval-") as scratch:
        store = Store.open(Path(scratch) / "eval.db", "eval")
        try:
            service = KnowledgeService(store, embedder, KnowledgeConfig(), model_id=embedding_model_id(path))
            bar = IngestBar(sys.stderr)
            report = asyncio.run(service.add_paths(args.kb, bar.update))
            bar.close()
            for outcome in report.failed:
                print(f"skipped {outcome.source}: {outcome.error}", file=sys.stderr)
            print(f"ingested {report.count('added')} files, {report.chunks} chunks in {report.elapsed_s:.1f} s",
                  file=sys.stderr)
            result = asyncio.run(_score_retrieval(service, queries, max(args.k, 1), args.mode))
            result["baselines"] = {"character_bm25": asyncio.run(_character_bm25(service, queries, max(args.k, 1)))}
            if args.compare:
                result["by_mode"] = {
                    mode: asyncio.run(_score_retrieval(service, queries, max(args.k, 1), mode))
                    for mode in ("bm25", "vector", "hybrid")
                }
        finally:
            store.close()
            embedder.close()
    print(json.dumps(result))
    return 0
