from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from appliance.local_model import LocalEmbedder, ModelMissing


def cosine(vectors: np.ndarray, a: int, b: int) -> float:
    return float(vectors[a] @ vectors[b])  # rows are unit vectors


def test_vectors_have_the_model_dimension_and_unit_length(embedder: LocalEmbedder) -> None:
    vectors = embedder.embed_sync(["Where is my order?", "退货政策", ""])
    assert embedder.dim == 384
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_an_empty_batch_gives_an_empty_matrix(embedder: LocalEmbedder) -> None:
    assert embedder.embed_sync([]).shape == (0, 384)


def test_paraphrases_score_higher_than_unrelated_english(embedder: LocalEmbedder) -> None:
    v = embedder.embed_sync([
        "How do I reset my password?",
        "I forgot my password and cannot log in.",
        "What time does the shop open on Sunday?",
    ])
    assert cosine(v, 0, 1) > 0.6
    assert cosine(v, 0, 1) > cosine(v, 0, 2) + 0.3


def test_chinese_paraphrases_score_higher_than_unrelated(embedder: LocalEmbedder) -> None:
    v = embedder.embed_sync(["我的信用卡丢了怎么办", "银行卡遗失如何挂失", "周末营业吗"])
    assert cosine(v, 0, 1) > 0.6
    assert cosine(v, 0, 1) > cosine(v, 0, 2) + 0.25


def test_a_question_finds_its_answer_across_languages(embedder: LocalEmbedder) -> None:
    question = embedder.embed_sync(["信用卡年费可以退吗"])[0]
    passages = embedder.embed_sync(["The annual card fee is refunded if you close the card within 30 days.",
                                    "Our branches open at 9 am on weekdays."], passage=True)
    assert float(passages[0] @ question) > float(passages[1] @ question) + 0.2


def test_the_model_file_says_how_texts_are_prepared(embedder: LocalEmbedder) -> None:
    assert embedder.prepare("ＡＢＣ　退款", passage=False) == "query: ABC 退款"  # NFKC: full-width folded
    assert embedder.prepare("退款", passage=True) == "passage: 退款"


def test_a_batch_equals_one_by_one(embedder: LocalEmbedder) -> None:
    texts = ["refund for a damaged parcel", "Öffnungszeiten am Wochenende", "我的订单在哪里", "ok",
             "a " * 600]  # the last one is cut to the 512-token context
    batch = embedder.embed_sync(texts)
    single = np.vstack([embedder.embed_sync([text]) for text in texts])
    # llama.cpp quantises activations per batch: the same vectors up to rounding
    assert np.min(np.sum(batch * single, axis=1)) > 0.999


def test_an_over_long_text_is_truncated_not_fatal(embedder: LocalEmbedder) -> None:
    long_text = "The customer asked about the refund policy for international orders. " * 400
    vectors = embedder.embed_sync(["short one", long_text, "another short one"])
    assert vectors.shape == (3, 384)
    assert np.isfinite(vectors).all()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


async def test_async_embed_runs_off_the_event_loop(embedder: LocalEmbedder) -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []
    original = embedder.embed_sync

    def spy(texts: list[str], *, passage: bool = False) -> np.ndarray:
        seen.append(threading.get_ident())
        return original(texts, passage=passage)

    embedder.embed_sync = spy  # type: ignore[method-assign]
    try:
        results = await asyncio.gather(*(embedder.embed([f"question {i}"]) for i in range(8)))
    finally:
        del embedder.embed_sync
    assert len(set(seen)) == 1 and seen[0] != loop_thread
    np.testing.assert_allclose(results[3], embedder.embed_sync(["question 3"]), atol=1e-6)


def test_a_missing_model_names_the_setup_command(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing, match=r"assemble_models\.py"):
        LocalEmbedder.load(tmp_path / "nope.gguf")
