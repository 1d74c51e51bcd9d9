"""``appliance kb ...``: ingest, list, remove and search the knowledge base of this node.

The commands write to the node's database directly (through its single-writer store), so they
work with or without a running server; a running server on this node reloads its indexes before
the command returns (each change bumps the knowledge-base version, which is part of every
answer-cache key).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from appliance.commands._context import load_config, node
from appliance.commands._live import apply_live
from appliance.commands._progress import IngestBar
from appliance.core.config import Config
from appliance.core.types import ChunkHit
from appliance.knowledge import KnowledgeService, embedding_model_id
from appliance.local_model import EMBED_FILE, LocalEmbedder, builtin_model_dir
from appliance.store import Store


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("kb", help="manage the knowledge base")
    actions = parser.add_subparsers(dest="kb_command", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add", help="ingest files or directories (Markdown, text, HTML, PDF, DOCX, CSV/XLSX Q&A)",
        description="Ingest files and directories (recursively). Unchanged files are skipped, changed ones "
        "re-embed only their changed chunks. Files that cannot be read are reported and skipped; the exit "
        "status is then 1.",
    )
    add.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    add.add_argument("--quiet", action="store_true", help="no progress bar")
    add.set_defaults(run=run_add)

    listing = actions.add_parser("list", help="list the documents")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(run=run_list)

    remove = actions.add_parser("remove", help="remove documents by id, path (directories too) or file name")
    remove.add_argument("targets", nargs="+", metavar="TARGET")
    remove.set_defaults(run=run_remove)

    search = actions.add_parser("search", help="show the best chunks for a query, with their scores")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=5, help="how many chunks (default 5)")
    search.add_argument("--mode", choices=["hybrid", "bm25", "vector"], default="hybrid")
    search.add_argument("--json", action="store_true", help="one JSON object per line")
    search.set_defaults(run=run_search)


def embedding_path(config: Config) -> Path:
    path = config.models.embedding_path
    return config.resolve(path) if path else builtin_model_dir() / EMBED_FILE


@contextmanager
def knowledge(args: argparse.Namespace, *, threads: int | None = None) -> Iterator[tuple[KnowledgeService, Store]]:
    with node(args) as (config, _, store):
        path = embedding_path(config)
        embedder = LocalEmbedder.load(path, threads=threads or config.models.embedding_threads)
        try:
            yield KnowledgeService(store, embedder, config.knowledge, model_id=embedding_model_id(path)), store
        finally:
            embedder.close()


def _applied(args: argparse.Namespace) -> None:
    apply_live(load_config(args), "knowledge")


def run_add(args: argparse.Namespace) -> int:
    bar = None if args.quiet else IngestBar(sys.stderr)
    with knowledge(args) as (service, _):
        try:
            report = asyncio.run(service.add_paths(args.paths, bar.update if bar else None, actor="cli", ip="local"))
        finally:
            if bar is not None:
                bar.close()
    for outcome in report.failed:
        print(f"skipped {outcome.source}: {outcome.error}", file=sys.stderr)
    print(
        f"added {report.count('added')}, updated {report.count('updated')}, unchanged {report.count('unchanged')},"
        f" failed {report.count('failed')}: {report.chunks} chunks ({report.embedded} embedded) in"
        f" {report.elapsed_s:.1f} s; knowledge base version {report.version}"
    )
    _applied(args)
    return 1 if report.failed else 0


def run_list(args: argparse.Namespace) -> int:
    with node(args) as (_, _, store):
        from appliance.store import knowledge as kb

        documents = store.read_sync(kb.list_documents)
        version = store.read_sync(kb.kb_version)
    if args.json:
        for doc in documents:
            print(msgspec.json.encode(doc).decode())
        return 0
    if not documents:
        print(f"the knowledge base is empty (version {version})")
        return 0
    print(f"{'ID':<24}  {'CHUNKS':>6}  {'FORMAT':<8}  {'TITLE':<32}  SOURCE")
    for doc in documents:
        title = doc.title if len(doc.title) <= 32 else doc.title[:31] + "…"
        print(f"{doc.document_id:<24}  {doc.chunk_count:>6}  {doc.format:<8}  {title:<32}  {doc.source}")
    chunks = sum(doc.chunk_count for doc in documents)
    print(f"{len(documents)} documents, {chunks} chunks; knowledge base version {version}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with knowledge(args) as (service, _):
        async def remove_all() -> list[str]:
            removed: list[str] = []
            for target in args.targets:
                removed.extend(doc.source for doc in await service.remove(target, actor="cli", ip="local"))
            return removed

        removed = asyncio.run(remove_all())
        version = asyncio.run(service.version())
    for source in removed:
        print(f"removed {source}")
    print(f"{len(removed)} documents removed; knowledge base version {version}")
    _applied(args)
    return 0


def format_hit(rank: int, hit: ChunkHit, width: int = 300) -> str:
    bm25 = f"#{hit.bm25_rank}" if hit.bm25_rank is not None else "-"
    vector = f"#{hit.vector_rank}" if hit.vector_rank is not None else "-"
    similarity = f"{hit.vector_similarity:.3f}" if hit.vector_similarity is not None else "-"
    where = f"{hit.document} › {hit.section}" if hit.section else hit.document
    body = hit.text if not hit.is_qa else f"Q: {hit.text}\nA: {hit.answer}"
    body = " ".join(body.split()) if len(body) > width else body
    if len(body) > width:
        body = body[: width - 1] + "…"
    indented = "\n".join("   " + line for line in body.splitlines())
    return (f"{rank}. {where}\n   fused {hit.score:.3f}  bm25 {bm25}  vector {vector} (cosine {similarity})"
            f"  [{hit.chunk_id}]\n{indented}")


def run_search(args: argparse.Namespace) -> int:
    with knowledge(args) as (service, _):
        hits = asyncio.run(service.search(args.query, max(args.k, 1), mode=args.mode))
    if args.json:
        for hit in hits:
            print(msgspec.json.encode(hit).decode())
        return 0
    if not hits:
        print("no matching chunks")
        return 0
    for rank, hit in enumerate(hits, start=1):
        print(format_hit(rank, hit))
    return 0
