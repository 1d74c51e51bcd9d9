"""Knowledge-base tables and hybrid search, as functions of a connection.

Tables (migrations 2 and 4, except ``kb_vectors``):

- ``kb_documents``: one row per document, tombstoned on removal (last writer wins by hlc, origin);
- ``kb_chunks``: chunk text and metadata; its integer ``row`` is the rowid in every index below;
  ``embedding`` a copy of the chunk's vector (float32) and ``code`` its sign bits, for the
  fast path of ``store/vector_index.py`` and for exact similarities by rowid, which ``vec0``
  answers slowly (each point lookup reads a block of 1,024 vectors);
- ``kb_fts``: contentless FTS5, ``porter unicode61``, columns ``head`` (title, section path, or a
  Q&A question) and ``body``; a run of CJK characters is indexed as its overlapping character
  bigrams (migration 8), so BM25 weighs Chinese bigrams as it weighs English words and even a
  one-character Chinese query matches;
- ``kb_vectors``: a sqlite-vec ``vec0`` table (cosine distance), created on first use with the
  embedding model's dimension, recreated when a newer event brings another model;
- ``kb_embedding_cache``: vectors by ``(model, text hash)``, local to the node;
- ``kb_state``: ``version`` (bumped by every applied change), ``vector_model``, ``vector_dim``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import msgspec

from appliance.core import events as ev
from appliance.core.chunking import CJK_CHAR, Chunk, embedding_text, text_hash
from appliance.core.retrieval import STOPWORDS, character_bigrams, cjk_runs, convex_fusion, word_terms
from appliance.core.types import ChunkHit
from appliance.store.conflicts import record_loser
from appliance.store.db import Connection
from appliance.store.vector_index import SignIndex, sign_code, similarities

SearchMode = Literal["hybrid", "bm25", "vector"]
MAX_QUERY_TERMS = 32
_CJK_RUN = re.compile(f"{CJK_CHAR.pattern}+")


class DocumentRow(msgspec.Struct, frozen=True, kw_only=True):
    document_id: str
    source: str
    title: str
    format: str
    content_hash: str
    size_bytes: int
    model: str
    chunk_count: int
    hlc: int


# -- state ------------------------------------------------------------------------------------

def _state(conn: Connection, key: str) -> Any:
    row = conn.execute("SELECT value FROM kb_state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _set_state(conn: Connection, key: str, value: object) -> None:
    conn.execute("INSERT OR REPLACE INTO kb_state (key, value) VALUES (?, ?)", (key, value))


def kb_version(conn: Connection) -> int:
    return int(_state(conn, "version") or 0)


def vector_model(conn: Connection) -> tuple[str, int]:
    """The model id and dimension of the vectors in ``kb_vectors`` (``("", 0)`` before any)."""
    return str(_state(conn, "vector_model") or ""), int(_state(conn, "vector_dim") or 0)


def refresh_index(conn: Connection, index: SignIndex) -> int:
    """Reload ``index`` unless it holds the current knowledge base; the version it holds."""
    version = kb_version(conn)
    index.refresh(conn, version, (vector_model(conn)[1] + 7) // 8)
    return version


def _bump_version(conn: Connection) -> None:
    conn.execute("UPDATE kb_state SET value = value + 1 WHERE key = 'version'")


def _has_vectors(conn: Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'kb_vectors'").fetchone() is not None


def _ensure_vector_index(conn: Connection, model: str, dim: int, hlc: int) -> bool:
    """Make ``kb_vectors`` hold ``model`` vectors; False if an older event brings another model."""
    current_model, current_dim = vector_model(conn)
    if current_model == model and current_dim == dim and _has_vectors(conn):
        return True
    if current_model and int(_state(conn, "vector_hlc") or 0) > hlc:
        return False
    conn.execute("DROP TABLE IF EXISTS kb_vectors")
    conn.execute("UPDATE kb_chunks SET code = NULL, embedding = NULL")
    conn.execute(f"CREATE VIRTUAL TABLE kb_vectors USING vec0(embedding float[{int(dim)}] distance_metric=cosine)")
    _set_state(conn, "vector_model", model)
    _set_state(conn, "vector_dim", dim)
    _set_state(conn, "vector_hlc", hlc)
    return True


# -- applying events --------------------------------------------------------------------------

def _newer_exists(conn: Connection, document_id: str, e: ev.Event) -> bool:
    row = conn.execute("SELECT hlc, origin FROM kb_documents WHERE id = ?", (document_id,)).fetchone()
    if row is None or (row[0], row[1]) <= (e.hlc, e.origin):
        return False
    record_loser(conn, "kb_documents", document_id, e, (row[0], row[1]))
    return True


def _delete_chunks(conn: Connection, document_id: str) -> None:
    rows = [(row,) for (row,) in conn.execute("SELECT row FROM kb_chunks WHERE document_id = ?", (document_id,))]
    if not rows:
        return
    conn.executemany("DELETE FROM kb_fts WHERE rowid = ?", rows)
    if _has_vectors(conn):
        conn.executemany("DELETE FROM kb_vectors WHERE rowid = ?", rows)
    conn.execute("DELETE FROM kb_chunks WHERE document_id = ?", (document_id,))


def cjk_spaced(text: str) -> str:
    """Text as indexed in ``kb_fts``: each run of CJK characters as its overlapping character
    bigrams (a lone character as itself), so BM25 counts bigrams as it counts words."""
    return _CJK_RUN.sub(lambda run: f" {' '.join(character_bigrams(run.group()))} ", text)


def _head_body(title: str, chunk: ev.KnowledgeChunk) -> tuple[str, str]:
    if chunk.is_qa:
        return f"{chunk.section}\n{chunk.text}", chunk.answer
    return f"{title}\n{chunk.section}", chunk.text


def apply_document_upserted(conn: Connection, e: ev.Event, p: ev.DocumentUpserted) -> None:
    if _newer_exists(conn, p.document_id, e):
        return
    _delete_chunks(conn, p.document_id)
    conn.execute(
        "INSERT OR REPLACE INTO kb_documents (id, source, title, format, content_hash, size_bytes, model,"
        " chunk_count, deleted, hlc, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
        (p.document_id, p.source, p.title, p.format, p.content_hash, p.size_bytes, p.model, len(p.chunks),
         e.hlc, e.origin),
    )
    vectors = bool(p.dim) and any(c.embedding for c in p.chunks) and _ensure_vector_index(conn, p.model, p.dim, e.hlc)
    fts, vec, cache = [], [], []
    for chunk in p.chunks:
        indexed = vectors and len(chunk.embedding) == 4 * p.dim
        row = conn.execute(
            "INSERT INTO kb_chunks (id, document_id, ordinal, section, text, is_qa, answer, embedding, code)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (chunk.chunk_id, p.document_id, chunk.ordinal, chunk.section, chunk.text, int(chunk.is_qa), chunk.answer,
             chunk.embedding if indexed else None, sign_code(chunk.embedding) if indexed else None),
        ).lastrowid
        head, body = _head_body(p.title, chunk)
        fts.append((row, cjk_spaced(head), cjk_spaced(body)))
        if indexed:
            vec.append((row, chunk.embedding))
            plain = Chunk(ordinal=chunk.ordinal, section=chunk.section, text=chunk.text, is_qa=chunk.is_qa,
                          answer=chunk.answer)
            cache.append((p.model, text_hash(embedding_text(p.title, plain)), chunk.embedding))
    conn.executemany("INSERT INTO kb_fts (rowid, head, body) VALUES (?, ?, ?)", fts)
    conn.executemany("INSERT INTO kb_vectors (rowid, embedding) VALUES (?, ?)", vec)
    conn.executemany("INSERT OR IGNORE INTO kb_embedding_cache (model, text_hash, embedding) VALUES (?, ?, ?)", cache)
    _bump_version(conn)


def apply_document_removed(conn: Connection, e: ev.Event, p: ev.DocumentRemoved) -> None:
    if _newer_exists(conn, p.document_id, e):
        return
    _delete_chunks(conn, p.document_id)
    conn.execute(
        "INSERT INTO kb_documents (id, source, deleted, hlc, origin) VALUES (?, '', 1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET deleted = 1, chunk_count = 0, hlc = excluded.hlc, origin = excluded.origin",
        (p.document_id, e.hlc, e.origin),
    )
    _bump_version(conn)


# -- reading ----------------------------------------------------------------------------------

_DOCUMENT_COLUMNS = "id, source, title, format, content_hash, size_bytes, model, chunk_count, hlc"


def _document(row: Sequence[Any]) -> DocumentRow:
    return DocumentRow(
        document_id=str(row[0]), source=str(row[1]), title=str(row[2]), format=str(row[3]),
        content_hash=str(row[4]), size_bytes=int(row[5]), model=str(row[6]),
        chunk_count=int(row[7]), hlc=int(row[8]),
    )


def list_documents(conn: Connection) -> list[DocumentRow]:
    rows = conn.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM kb_documents WHERE deleted = 0 ORDER BY source")
    return [_document(row) for row in rows]


def get_document(conn: Connection, document_id: str) -> DocumentRow | None:
    row = conn.execute(
        f"SELECT {_DOCUMENT_COLUMNS} FROM kb_documents WHERE id = ? AND deleted = 0", (document_id,)
    ).fetchone()
    return _document(row) if row else None


def document_chunks(conn: Connection, document_id: str) -> list[ChunkHit]:
    rows = conn.execute(
        "SELECT c.id, d.source, c.section, c.text, c.is_qa, c.answer FROM kb_chunks c"
        " JOIN kb_documents d ON d.id = c.document_id WHERE c.document_id = ? ORDER BY c.ordinal",
        (document_id,),
    )
    return [_hit(row) for row in rows]


def cached_embeddings(conn: Connection, model: str, hashes: Iterable[bytes]) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    wanted = list(dict.fromkeys(hashes))
    for start in range(0, len(wanted), 500):
        batch = wanted[start:start + 500]
        marks = ", ".join("?" for _ in batch)
        found.update(conn.execute(
            f"SELECT text_hash, embedding FROM kb_embedding_cache WHERE model = ? AND text_hash IN ({marks})",
            (model, *batch),
        ).fetchall())
    return found


def cache_embeddings(conn: Connection, model: str, items: Iterable[tuple[bytes, bytes]]) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO kb_embedding_cache (model, text_hash, embedding) VALUES (?, ?, ?)",
        ((model, digest, vector) for digest, vector in items),
    )


# -- search -----------------------------------------------------------------------------------

def fts_query(query: str) -> str:
    """An FTS5 MATCH expression for ``kb_fts`` from any user text (never a syntax error): the
    query's words and CJK bigrams, each a quoted token or phrase, OR-ed; empty if none."""
    words = [word for word in word_terms(query) if len(word) > 1 or word.isdigit()]
    content = [word for word in words if word not in STOPWORDS]
    terms = list(dict.fromkeys(content or words))
    for run in cjk_runs(query):
        terms.extend(dict.fromkeys(character_bigrams(run)))
    return " OR ".join(f'"{term}"' for term in terms[:MAX_QUERY_TERMS])


def _bm25_ranked(conn: Connection, match: str, limit: int) -> list[tuple[int, float]]:
    """``(rowid, BM25 score)`` best first; the title/section column counts twice the body."""
    if not match:
        return []
    rows = conn.execute(
        "SELECT rowid, bm25(kb_fts, 2.0, 1.0) AS rank FROM kb_fts WHERE kb_fts MATCH ? ORDER BY rank LIMIT ?",
        (match, limit),
    )
    return [(row, -rank) for row, rank in rows]  # FTS5's bm25() is negated: lower is better


def _vector_ranked(conn: Connection, vector: bytes, limit: int) -> list[tuple[int, float]]:
    rows = conn.execute(
        "SELECT rowid, distance FROM kb_vectors WHERE embedding MATCH ? AND k = ? ORDER BY distance", (vector, limit)
    )
    return [(row, 1.0 - distance) for row, distance in rows if distance is not None]


def _hit(row: Sequence[Any], **ranks: Any) -> ChunkHit:
    source = str(row[1])
    return ChunkHit(
        chunk_id=str(row[0]), document=source.replace("\\", "/").rsplit("/", 1)[-1], section=str(row[2]),
        text=str(row[3]), is_qa=bool(row[4]), answer=str(row[5]), **ranks,
    )


def search_chunks(
    conn: Connection, query: str, vector: bytes | None, k: int, *, candidates: int = 40,
    lexical_weight: float = 0.35, mode: SearchMode = "hybrid", index: SignIndex | None = None,
) -> list[ChunkHit]:
    """The ``k`` best chunks for ``query`` (and its embedding ``vector``, float32 bytes).

    BM25 over words and CJK bigrams, and the vector KNN, each give ``candidates`` chunks;
    :func:`~appliance.core.retrieval.convex_fusion` gives the order and ``score``. ``mode``
    restricts to one side, for evaluation. With an ``index`` (kept by a long-lived caller) the
    nearest chunks come from it instead of a ``vec0`` scan: the same result, much faster at scale.
    """
    limit = max(candidates, k)
    lexical = _bm25_ranked(conn, fts_query(query), limit) if mode != "vector" else []
    nearest: list[tuple[int, float]] = []
    has_vectors = vector is not None and _has_vectors(conn)
    if mode != "bm25" and has_vectors and vector is not None:
        if index is not None:
            refresh_index(conn, index)
        if index is not None and index.complete:
            nearest = index.nearest(conn, vector, limit)
        else:
            nearest = _vector_ranked(conn, vector, limit)
    fused = convex_fusion(lexical, nearest, lexical_weight=lexical_weight)[:k]
    if not fused:
        return []
    rows = [int(row) for row, _ in fused]
    similarity = dict(nearest)
    if has_vectors and vector is not None:
        similarity.update(similarities(conn, vector, [row for row in rows if row not in similarity]))
    lexical_rank = {row: rank for rank, (row, _) in enumerate(lexical, start=1)}
    lexical_score = dict(lexical)
    vector_rank = {row: rank for rank, (row, _) in enumerate(nearest, start=1)}
    marks = ", ".join("?" for _ in rows)
    details = {
        int(row[0]): row[1:] for row in conn.execute(
            f"SELECT c.row, c.id, d.source, c.section, c.text, c.is_qa, c.answer FROM kb_chunks c"
            f" JOIN kb_documents d ON d.id = c.document_id WHERE c.row IN ({marks})", rows,
        )
    }
    return [
        _hit(details[row], score=score, bm25_rank=lexical_rank.get(row), vector_rank=vector_rank.get(row),
             bm25_score=round(lexical_score[row], 6) if row in lexical_score else None,
             vector_similarity=round(similarity[row], 6) if row in similarity else None)
        for row, score in ((int(r), s) for r, s in fused) if row in details
    ]


def opening_texts(conn: Connection) -> dict[str, str]:
    """The first chunk's text of every document (what its language is told from)."""
    rows = conn.execute(
        "SELECT d.id, (SELECT c.text FROM kb_chunks c WHERE c.document_id = d.id ORDER BY c.ordinal LIMIT 1)"
        " FROM kb_documents d WHERE d.deleted = 0"
    )
    return {str(document_id): str(text or "") for document_id, text in rows}
