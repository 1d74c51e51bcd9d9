"""``appliance eval ...``: measure the intent classifier, retrieval and whole answers on labelled data.

None needs a config: they use the built-in embedding model (or ``--embedding-model``) and, for
retrieval and answers, a fresh temporary store. ``eval answers`` runs a whole node in this
process (the shipped config, no LLM, the built-in chat model) and asks it each question as a new
visitor. Progress goes to stderr; the last line of stdout is one JSON
object whose field names scripts rely on (see ``issues show 4``).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from appliance.commands._context import read_config
from appliance.commands._progress import IngestBar
from appliance.commands.init import config_template
from appliance.core.baselines import CharacterBM25, logistic_regression
from appliance.core.config import Config, KnowledgeConfig
from appliance.core.errors import InputError
from appliance.core.intents import IntentModel
from appliance.core.language import detect
from appliance.core.types import Reply, Trace
from appliance.knowledge import KnowledgeService, embedding_model_id, read_examples_csv
from appliance.local_model import EMBED_FILE, LocalEmbedder, builtin_model_dir
from appliance.node import NodeIdentity
from appliance.store import Store, desk
from appliance.store.knowledge import SearchMode

if TYPE_CHECKING:
    from appliance.runtime import Runtime


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

    answers = kinds.add_parser(
        "answers", help="ask a node with no LLM (the built-in model) each question in --cases; score the replies")
    answers.add_argument("--kb", type=Path, required=True, nargs="+", help="files or directories to ingest")
    answers.add_argument("--cases", type=Path, required=True,
                         help="CSV with header question,language,documents,facts (alternatives separated by |; "
                              "both empty: the knowledge base does not answer it)")
    answers.add_argument("--chat-model", default="standard",
                         help="standard, small, or a GGUF file (default: standard)")
    answers.add_argument("--turn-budget", type=float, default=None, help="seconds a turn may take (default: config's)")
    answers.set_defaults(run=run_answers)


def _model_path(args: argparse.Namespace) -> Path:
    return args.embedding_model or builtin_model_dir() / EMBED_FILE


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(values), q)), 3) if values else 0.0


def _read_rows(path: Path, columns: tuple[str, str]) -> list[tuple[str, str]]:
    return [(row[columns[0]], row[columns[1]]) for row in _read_table(path, columns)]


def _read_table(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a CSV file with a header naming ``columns`` (stripped; rows without the first skipped)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not set(columns) <= {name.strip() for name in reader.fieldnames}:
        raise InputError(f"{path}: needs a header row with columns {','.join(columns)}")
    return [{c: (row.get(c) or "").strip() for c in columns} for row in reader if (row.get(columns[0]) or "").strip()]


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


# -- whole answers ---------------------------------------------------------------------------

REFUSED = {"no_answer", "handoff", "leave_message"}  # "the knowledge base has no answer", said or acted on


class AnswerCase(msgspec.Struct, frozen=True, kw_only=True):
    question: str
    language: str
    documents: tuple[str, ...]  # any of these cited first is right; empty: nothing answers it
    facts: tuple[str, ...]  # the reply must contain one of these


def _read_cases(path: Path) -> list[AnswerCase]:
    cases = []
    for line, row in enumerate(_read_table(path, ("question", "language", "documents", "facts")), start=2):
        if row["language"] not in ("en", "zh"):
            raise InputError(f"{path}: row {line}: language must be en or zh, not {row['language']!r}")
        documents = tuple(d.strip() for d in row["documents"].split("|") if d.strip())
        facts = tuple(f.strip() for f in row["facts"].split("|") if f.strip())
        if bool(documents) != bool(facts):
            raise InputError(f"{path}: row {line}: give both documents and facts, or neither (no answer expected)")
        cases.append(AnswerCase(question=row["question"], language=row["language"], documents=documents, facts=facts))
    if not cases:
        raise InputError(f"{path}: no cases")
    return cases


def _flat(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).casefold().split())


def score_answer(case: AnswerCase, reply: Reply) -> dict[str, bool]:
    """What a visitor would notice about one reply: the fact, the source cited first, the language;
    for a question the knowledge base does not answer, that the bot said so instead of answering."""
    if not case.facts:
        refused = reply.source in REFUSED
        return {"correct": refused, "refused": refused}
    cited = [Path(c.document).name for c in reply.citations]
    checks = {
        "fact": any(_flat(fact) in _flat(reply.text) for fact in case.facts),
        "citation": bool(cited) and cited[0] in case.documents,
        "language": detect(reply.text) == case.language,
    }
    return {"correct": all(checks.values()), **checks}


class Asked(msgspec.Struct, frozen=True, kw_only=True):
    case: AnswerCase
    reply: Reply
    trace: Trace
    score: dict[str, bool]
    seconds: float


def _summary(asked: list[Asked]) -> dict[str, Any]:
    scores = [a.score for a in asked]
    answerable = [s for s in scores if "fact" in s]
    unanswerable = [s for s in scores if "refused" in s]

    def share(rows: list[dict[str, bool]], key: str) -> float:
        return round(sum(r[key] for r in rows) / len(rows), 3) if rows else 0.0

    by_language = {}
    for language in ("en", "zh"):
        rows = [a.score for a in asked if a.case.language == language]
        if rows:
            by_language[language] = {"n": len(rows), "correct": share(rows, "correct")}
    seconds = [a.seconds for a in asked]
    return {
        "n_cases": len(asked), "correct": share(scores, "correct"),
        "fact": share(answerable, "fact"), "citation": share(answerable, "citation"),
        "language": share(answerable, "language"), "refused_when_unanswerable": share(unanswerable, "refused"),
        "by_language": by_language,
        "sources": dict(Counter(a.reply.source for a in asked).most_common()),
        "p50_s": _percentile(seconds, 50), "p90_s": _percentile(seconds, 90),
        # Why each wrong reply came about: the passages retrieved and the fallbacks taken.
        "wrong": [{"question": a.case.question, "source": a.reply.source, "reply": a.reply.text[:200],
                   "cited": [c.document for c in a.reply.citations],
                   "passages": [f"{hit.document} § {hit.section}" for hit in a.trace.chunks],
                   "intent": a.trace.intent, "fallbacks": a.trace.fallbacks}
                  for a in asked if not a.score["correct"]],
    }


def _node_config(directory: Path, chat_model: str, turn_budget: float | None) -> Config:
    """The shipped config for a scratch node in ``directory``, with the chat model asked for."""
    text = config_template()
    if chat_model in ("standard", "small"):
        text = text.replace('builtin_chat = "standard"', f'builtin_chat = "{chat_model}"', 1)
    else:
        model = Path(chat_model).resolve()
        if not model.is_file():
            raise InputError(f"--chat-model: {chat_model}: not standard, small or a GGUF file")
        text = text.replace('chat_path = ""', f"chat_path = {json.dumps(str(model))}", 1)
    if turn_budget is not None:
        text = re.sub(r"(?m)^turn_budget_s = .*$", f"turn_budget_s = {turn_budget}", text, count=1)
    config_file = directory / "config.toml"
    config_file.write_text(text, encoding="utf-8")
    return read_config(config_file)


async def _ask_all(runtime: Runtime, kb: list[Path], cases: list[AnswerCase]) -> list[Asked]:
    await runtime.start()
    try:
        await runtime.wait_ready()
        assert runtime.knowledge is not None
        bar = IngestBar(sys.stderr)
        report = await runtime.knowledge.add_paths(kb, bar.update)
        bar.close()
        for outcome in report.failed:
            print(f"skipped {outcome.source}: {outcome.error}", file=sys.stderr)
        print(f"ingested {report.count('added')} files, {report.chunks} chunks", file=sys.stderr)
        scored = []
        for i, case in enumerate(cases, start=1):
            started = time.perf_counter()
            outcome = await runtime.chat(case.question, conversation_id=None, visitor_token=None)
            took = time.perf_counter() - started
            reply = outcome.reply or Reply(text="", source="handoff")
            trace = (await runtime.store.read(lambda c, trace_id=outcome.trace_id: desk.trace(c, trace_id))
                     if outcome.trace_id else Trace(trace_id="", conversation_id=outcome.conversation_id))
            score = score_answer(case, reply)
            mark = "✓" if score["correct"] else "✗"
            print(f"[{i}/{len(cases)}] {mark} {reply.source:12} {took:5.1f}s {case.question} → {reply.text[:80]!r}",
                  file=sys.stderr)
            scored.append(Asked(case=case, reply=reply, trace=trace, score=score, seconds=took))
        return scored
    finally:
        await runtime.close()


def run_answers(args: argparse.Namespace) -> int:
    from appliance.runtime import Runtime  # the whole node: only this command needs it

    cases = _read_cases(args.cases)
    with tempfile.TemporaryDirectory(prefix="appliance-eval-") as scratch:
        config = _node_config(Path(scratch), args.chat_model, args.turn_budget)
        identity = NodeIdentity.create(config.data_dir, "eval")
        runtime = Runtime(config, identity, Store.from_config(config, identity.node_id))
        scored = asyncio.run(_ask_all(runtime, args.kb, cases))
    result = {"chat_model": args.chat_model, "turn_budget_s": config.engine.turn_budget_s, **_summary(scored)}
    print(json.dumps(result, ensure_ascii=False))
    return 0
