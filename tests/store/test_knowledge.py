"""Knowledge-base tables through the real store: events in, hybrid search out.

Vectors here are deterministic stand-ins (word hashing), so these tests pin the SQL side:
indexing, BM25/vector fusion, query sanitising, last-writer-wins and replication.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.core import events as ev
from appliance.core.chunking import Chunk, embedding_text
from appliance.store import Store
from appliance.store import knowledge as kb

DIM = 256


def vector(text: str) -> bytes:
    v = np.zeros(DIM, dtype=np.float32)
    for word in re.findall(r"[a-z0-9]+|[\u4e00-\u9fff]", text.lower()):
        v += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(DIM).astype(np.float32)
    v /= max(float(np.linalg.norm(v)), 1e-9)
    return v.astype("<f4").tobytes()


def upsert(document_id: str, source: str, chunks: list[tuple[str, str]], *, title: str = "Guide",
           model: str = "m1", qa: dict[str, str] | None = None) -> ev.DocumentUpserted:
    items = []
    for ordinal, (section, text) in enumerate(chunks):
        answer = (qa or {}).get(text, "")
        chunk = Chunk(ordinal=ordinal, section=section, text=text, is_qa=bool(answer), answer=answer)
        items.append(ev.KnowledgeChunk(
            chunk_id=f"{document_id}-{ordinal}", ordinal=ordinal, section=section, text=text, is_qa=bool(answer),
            answer=answer, embedding=vector(embedding_text(title, chunk)),
        ))
    return ev.DocumentUpserted(document_id=document_id, source=source, title=title, format="markdown",
                               content_hash=f"hash-{document_id}-{len(chunks)}", model=model, dim=DIM, chunks=items)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "kb.db", "node-a")
    yield store
    store.close()


CARDS = upsert("doc_cards", "/kb/cards.md", [
    ("Cards > Lost cards", "If your card is lost or stolen, freeze it in the app or call the hotline."),
    ("Cards > Delivery", "New cards arrive by post within 5 to 7 working days."),
    ("Cards > Limits", "The contactless limit is 100 USD per payment."),
])
ZH = upsert("doc_zh", "/kb/zh/银行卡.md", [
    ("银行卡 > 挂失", "如果您的银行卡丢失或被盗，请立即在App中冻结或拨打挂失热线。"),
    ("银行卡 > 年费", "借记卡免年费，信用卡首年免年费。"),
], title="银行卡")
FAQ = upsert("doc_faq", "/kb/faq.csv", [("Accounts", "How do I close my account?")],
             qa={"How do I close my account?": "In the app under Settings."})


def search(store: Store, query: str, k: int = 3, **options: object) -> list[str]:
    hits = store.read_sync(lambda conn: kb.search_chunks(conn, query, vector(query), k, **options))  # type: ignore[arg-type]
    return [hit.chunk_id for hit in hits]


def test_hybrid_search_english_and_chinese(store: Store) -> None:
    store.append_sync(CARDS, ZH, FAQ)
    assert search(store, "lost card")[0] == "doc_cards-0"
    assert search(store, "how long does card delivery take")[0] == "doc_cards-1"
    assert search(store, "银行卡丢失怎么办")[0] == "doc_zh-0"  # character bigrams
    assert search(store, "年费")[0] == "doc_zh-1"  # two CJK characters: bigram fallback
    assert search(store, "卡")  # a single character still matches something
    hits = store.read_sync(lambda conn: kb.search_chunks(conn, "close my account", vector("close my account"), 2))
    top = hits[0]
    assert top.is_qa and top.answer == "In the app under Settings." and top.document == "faq.csv"
    assert top.bm25_rank == 1 and top.vector_rank == 1 and top.score == pytest.approx(1.0)
    assert top.vector_similarity is not None and top.vector_similarity > 0.5


def test_modes_and_lexical_weight(store: Store) -> None:
    store.append_sync(CARDS, ZH)
    bm25 = store.read_sync(lambda conn: kb.search_chunks(conn, "contactless limit", None, 3, mode="bm25"))
    assert bm25[0].chunk_id == "doc_cards-2" and all(hit.vector_rank is None for hit in bm25)
    nearest = store.read_sync(lambda conn: kb.search_chunks(
        conn, "contactless limit", vector("contactless limit"), 3, mode="vector"))
    assert nearest[0].chunk_id == "doc_cards-2" and all(hit.bm25_rank is None for hit in nearest)
    wording = store.read_sync(lambda conn: kb.search_chunks(
        conn, "银行卡丢失", vector("银行卡丢失"), 3, lexical_weight=1.0))
    ranks = [hit.bm25_rank for hit in wording if hit.bm25_rank is not None]
    assert ranks == sorted(ranks) and wording[0].bm25_rank == 1  # BM25's order; vector-only hits after
    assert wording[0].vector_similarity is not None  # still reported, for relevance and traces


@pytest.mark.parametrize("query", [
    'card" OR "x', "card AND (", "NOT", "*", "^card", "col:card", "NEAR(card lost)", '"""', "", "   ", "-card",
    "card's", "卡\"丢", "a" * 5000, "🙂 emoji", "SELECT * FROM kb_chunks; --",
])
def test_user_text_never_breaks_the_query(store: Store, query: str) -> None:
    store.append_sync(CARDS, ZH)
    store.read_sync(lambda conn: kb.search_chunks(conn, query, vector(query or "x"), 3))


def test_fts_queries_are_sanitised() -> None:
    assert kb.fts_query('lost "card" OR fee*') == '"lost" OR "card" OR "fee"'
    assert kb.fts_query("the of") == '"the" OR "of"'  # only stop words: keep them
    assert kb.fts_query("信用卡") == '"信用" OR "用卡"'
    assert kb.fts_query("卡") == '"卡"'
    assert kb.cjk_spaced("我的iPhone信用卡") == " 我的 iPhone 信用 用卡 "


def test_version_bumps_and_removal(store: Store) -> None:
    assert store.read_sync(kb.kb_version) == 0
    store.append_sync(CARDS)
    assert store.read_sync(kb.kb_version) == 1
    store.append_sync(upsert("doc_cards", "/kb/cards.md", [("Cards", "Only one chunk now about lost cards.")]))
    assert store.read_sync(kb.kb_version) == 2
    assert search(store, "lost cards", mode="bm25") == ["doc_cards-0"]
    assert search(store, "delivery working days", mode="bm25") == []  # the old chunks are gone
    assert store.read_sync(kb.list_documents)[0].chunk_count == 1
    store.append_sync(ev.DocumentRemoved(document_id="doc_cards"))
    assert store.read_sync(kb.kb_version) == 3
    assert search(store, "lost cards") == []
    assert store.read_sync(kb.list_documents) == []
    counts = store.read_sync(lambda conn: [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                           for t in ("kb_chunks", "kb_vectors")])
    assert counts == [0, 0]


def test_last_writer_wins_and_replicas_index_shipped_vectors(tmp_path: Path, store: Store) -> None:
    events = store.append_sync(CARDS, ev.DocumentRemoved(document_id="doc_cards"))
    replica = Store.open(tmp_path / "replica.db", "node-b")
    try:
        # The replica gets the removal first, then the older upsert: the upsert must not resurrect it.
        replica.write_sync(lambda txn: [txn.insert(e) for e in reversed(events)])
        assert replica.read_sync(kb.list_documents) == []
        # A newer upsert from the origin goes in, vectors included, without any embedding model.
        newer = store.append_sync(CARDS)
        replica.write_sync(lambda txn: txn.insert(newer[0]))
        assert search(replica, "contactless limit", mode="vector")[0] == "doc_cards-2"
        assert replica.read_sync(kb.vector_model) == ("m1", DIM)
        cached = replica.read_sync(lambda conn: conn.execute("SELECT count(*) FROM kb_embedding_cache").fetchone()[0])
        assert cached == 3
    finally:
        replica.close()


def test_a_newer_model_replaces_the_vector_index(store: Store) -> None:
    store.append_sync(CARDS)
    other = upsert("doc_zh", "/kb/zh/银行卡.md", [("银行卡", "银行卡挂失请拨打热线。")], model="m2")
    store.append_sync(other)
    assert store.read_sync(kb.vector_model) == ("m2", DIM)
    # The cards' old-model vectors are gone until re-embedded; lexical search still finds them.
    assert search(store, "lost card", mode="vector") == ["doc_zh-0"]
    assert search(store, "lost card", mode="bm25")[0] == "doc_cards-0"


def test_embedding_cache(store: Store) -> None:
    store.write_sync(lambda txn: kb.cache_embeddings(txn.conn, "m1", [(b"h1", b"v1"), (b"h2", b"v2")]))
    found = store.read_sync(lambda conn: kb.cached_embeddings(conn, "m1", [b"h1", b"h3", b"h1"]))
    assert found == {b"h1": b"v1"}
    assert store.read_sync(lambda conn: kb.cached_embeddings(conn, "m2", [b"h1"])) == {}


def test_sign_index_matches_the_vec0_scan_and_follows_changes(store: Store) -> None:
    from appliance.store.vector_index import SignIndex

    store.append_sync(CARDS, ZH, FAQ)
    index = SignIndex()
    for query in ("contactless limit", "lost or stolen card", "close my account", "delivery by post"):
        scan = store.read_sync(lambda conn, q=query: kb.search_chunks(conn, q, vector(q), 3, mode="vector"))
        fast = store.read_sync(lambda conn, q=query: kb.search_chunks(conn, q, vector(q), 3, mode="vector",
                                                                        index=index))
        assert [(h.chunk_id, round(h.vector_similarity or 0, 4)) for h in fast] == \
            [(h.chunk_id, round(h.vector_similarity or 0, 4)) for h in scan]
    assert len(index) == 6
    store.append_sync(ev.DocumentRemoved(document_id="doc_cards"))
    hits = store.read_sync(lambda conn: kb.search_chunks(conn, "contactless limit", vector("contactless limit"), 3,
                                                         mode="vector", index=index))
    assert len(index) == 3 and all(not h.chunk_id.startswith("doc_cards") for h in hits)


def test_chunks_stored_before_migration_4_are_still_found(store: Store) -> None:
    from appliance.store.vector_index import SignIndex

    store.append_sync(CARDS, ZH)
    # As a node upgraded in place has them: vectors in vec0, no copies or sign codes.
    store.write_sync(lambda txn: txn.conn.execute("UPDATE kb_chunks SET code = NULL, embedding = NULL"))
    index = SignIndex()
    hits = store.read_sync(lambda conn: kb.search_chunks(conn, "contactless limit", vector("contactless limit"), 3,
                                                         index=index))
    assert not index.complete
    assert hits[0].chunk_id == "doc_cards-2" and hits[0].vector_rank == 1
    assert all(hit.vector_similarity is not None for hit in hits)
