"""Rank fusion and the decisions built on hits: relevance, direct Q&A answers, extractive quotes."""

from __future__ import annotations

import pytest

from appliance.core.config import KnowledgeConfig
from appliance.core.retrieval import (
    citations,
    content_terms,
    convex_fusion,
    direct_answer,
    extract_answer,
    is_relevant,
    relevant_hits,
    term_coverage,
)
from appliance.core.types import ChunkHit

CONFIG = KnowledgeConfig()


def hit(text: str, *, similarity: float | None = None, qa: bool = False, answer: str = "", section: str = "",
        chunk_id: str = "c1") -> ChunkHit:
    return ChunkHit(chunk_id=chunk_id, document="cards.md", section=section, text=text, score=0.9,
                    vector_similarity=similarity, is_qa=qa, answer=answer)


def test_convex_fusion_keeps_the_margin_of_a_clear_winner() -> None:
    lexical = [(1, 12.0), (2, 3.0), (3, 2.5)]
    vector = [(2, 0.62), (3, 0.60), (1, 0.58), (4, 0.20)]
    fused = convex_fusion(lexical, vector, lexical_weight=0.35)
    # 1 is far ahead on wording and only a little behind in meaning: it wins; RRF would rank 2 first.
    assert [item for item, _ in fused][:2] == [1, 2]
    assert all(0.0 <= score <= 1.0 for _, score in fused)
    assert {item for item, _ in fused} == {1, 2, 3, 4}


def test_convex_fusion_with_one_side_keeps_its_order() -> None:
    assert [i for i, _ in convex_fusion([(5, 2.0), (6, 1.0)], [])] == [5, 6]
    assert [i for i, _ in convex_fusion([], [(7, 0.3), (8, 0.9)])] == [8, 7]
    assert convex_fusion([], []) == []
    # the weight decides between the sides
    assert convex_fusion([(1, 1.0)], [(2, 0.9), (1, 0.1)], lexical_weight=1.0)[0][0] == 1
    assert convex_fusion([(1, 1.0)], [(2, 0.9), (1, 0.1)], lexical_weight=0.0)[0][0] == 2


def test_content_terms_english_chinese_mixed() -> None:
    assert content_terms("How do I report my lost cards?") == ["report", "lost", "card"]
    assert content_terms("信用卡丢了怎么办") == ["信用", "用卡", "卡丢", "丢了", "么办"]
    assert content_terms("iPhone 15 的保修") == ["iphone", "15", "保修"]
    assert content_terms("卡") == ["卡"]
    assert content_terms("the of and") == []


def test_coverage_and_relevance() -> None:
    assert term_coverage("lost card fee", "Replacement of a lost card costs 5 USD.") == pytest.approx(2 / 3)
    assert term_coverage("hello", "anything") == 0.0
    # English: a close embedding is enough.
    assert is_relevant("misplaced my plastic", hit("Freeze your card in the app.", similarity=0.6), CONFIG)
    assert not is_relevant("weather tomorrow", hit("Freeze your card in the app.", similarity=0.1), CONFIG)
    # Chinese: the same, by meaning or by words.
    assert is_relevant("银行卡不见了", hit("如果您的信用卡丢失，请立即挂失。", similarity=0.6), CONFIG)
    assert not is_relevant("今天天气怎么样", hit("如果您的信用卡丢失，请立即挂失。", similarity=0.1), CONFIG)
    assert is_relevant("信用卡丢失", hit("如果您的信用卡丢失，请立即挂失。", similarity=0.2), CONFIG)
    kept = relevant_hits("lost card", [hit("Lost card? Freeze it.", chunk_id="a"), hit("Opening hours.", chunk_id="b")],
                         CONFIG)
    assert [h.chunk_id for h in kept] == ["a"]


def test_direct_answer_needs_a_close_question() -> None:
    qa = hit("How do I close my account?", qa=True, answer="In the app, under Settings.", similarity=0.9)
    assert direct_answer("how can I close my account", [qa], CONFIG) is qa
    weak = hit("How do I close my account?", qa=True, answer="In the app.", similarity=0.7)
    assert direct_answer("how do I open an account", [weak], CONFIG) is None
    # Chinese: by wording, or by a close embedding; "open" is not "close" (cosine measured: 0.61).
    zh = hit("如何销户？", qa=True, answer="在App中注销。", similarity=0.3)
    assert direct_answer("如何销户", [zh], CONFIG) is zh
    assert direct_answer("如何开户", [hit("如何销户？", qa=True, answer="x", similarity=0.61)], CONFIG) is None
    assert direct_answer("怎样注销我的账户", [hit("如何销户？", qa=True, answer="x", similarity=0.9)], CONFIG)
    # Only Q&A pairs among the top hits answer directly.
    text_hit = hit("How do I close my account? Ask us.", similarity=0.95)
    assert direct_answer("how do I close my account", [text_hit], CONFIG) is None


def test_extract_answer_picks_the_best_sentences() -> None:
    text = ("Cards arrive by post within 5 to 7 working days. Express delivery costs 15 USD. "
            "To activate a card, make a chip-and-PIN payment. Contactless works after that.")
    assert extract_answer("how much is express delivery", hit(text)) == "Express delivery costs 15 USD. " \
        "To activate a card, make a chip-and-PIN payment."
    assert extract_answer("activate", hit(text)).startswith("To activate a card")
    zh = "新卡在5到7个工作日内寄到。加急寄送费用为15美元。激活卡片请在App中操作。"
    assert extract_answer("加急寄送多少钱", hit(zh)).startswith("加急寄送费用为15美元。")
    assert extract_answer("any answer?", hit("Q?", qa=True, answer="The answer.")) == "The answer."
    lines = "Limits:\n- Contactless: 100 USD\n- ATM: 500 USD per day\n- Online: 5000 USD"
    assert extract_answer("how much cash from the ATM per day", hit(lines)).startswith("- ATM: 500 USD per day")
    assert extract_answer("what are the limits", hit(lines)) == lines  # the intro brings its list
    long = "word " * 500
    assert len(extract_answer("word", hit(long), max_chars=100)) <= 100


def test_no_quote_when_no_sentence_shares_a_word_with_the_question() -> None:
    text = "Express delivery costs 15 USD. Cards arrive in 5 to 7 working days."
    assert extract_answer("Do you sell car insurance?", hit(text)) == ""
    assert extract_answer("你们卖车险吗？", hit("加急寄送费用为15美元。新卡5到7个工作日寄到。")) == ""
    faq = hit("可以转人工客服吗？", qa=True, answer="可以。请拨打客服热线400-820-0100。")
    assert extract_answer("你们卖车险吗？", faq) == ""
    assert extract_answer("怎么转人工？", faq) == "可以。请拨打客服热线400-820-0100。"


def test_citations_name_the_chunks() -> None:
    cited = citations([hit("x", section="Cards > Lost", chunk_id="ch_1")])
    assert cited[0].chunk_id == "ch_1" and cited[0].document == "cards.md" and cited[0].section == "Cards > Lost"
    assert cited[0].score == 0.9
