"""Chunking by structure: sections, packing, overlap, Q&A pairs, Chinese text."""

from __future__ import annotations

import itertools

from appliance.core.chunking import (
    Block,
    Chunk,
    SourceDocument,
    chunk_document,
    chunk_id,
    embedding_text,
    split_sentences,
    text_size,
    truncate,
)


def doc(*blocks: Block, title: str = "Guide") -> SourceDocument:
    return SourceDocument(source="/kb/guide.md", title=title, format="markdown", blocks=list(blocks))


def heading(text: str, level: int = 1) -> Block:
    return Block(kind="heading", text=text, level=level)


def para(text: str) -> Block:
    return Block(kind="paragraph", text=text)


def test_sections_follow_the_heading_path() -> None:
    chunks = chunk_document(doc(
        heading("Cards"), para("Intro."),
        heading("Lost cards", 2), para("Freeze it."), Block(kind="list_item", text="Call us."),
        heading("PIN", 3), para("Three tries."),
        heading("Fees", 2), Block(kind="table_row", text="Fee: Replacement; Amount: 5 USD"),
        heading("Transfers"), para("Free at home."),
    ), 800, 100)
    assert [(c.section, c.text) for c in chunks] == [
        ("Cards", "Intro."),
        ("Cards > Lost cards", "Freeze it.\n- Call us."),
        ("Cards > Lost cards > PIN", "Three tries."),
        ("Cards > Fees", "Fee: Replacement; Amount: 5 USD"),
        ("Transfers", "Free at home."),
    ]
    assert [c.ordinal for c in chunks] == [0, 1, 2, 3, 4]


def test_long_sections_pack_up_to_the_limit_with_overlap() -> None:
    sentences = [f"Sentence number {i} explains one detail of the card policy." for i in range(40)]
    chunks = chunk_document(doc(heading("Policy"), para(" ".join(sentences))), 300, 80)
    assert len(chunks) > 5
    assert all(text_size(c.text) <= 300 for c in chunks)
    for before, after in itertools.pairwise(chunks):
        last_sentence = split_sentences(before.text)[-1]
        assert after.text.startswith(last_sentence)  # the overlap repeats the previous chunk's end
    covered = " ".join(c.text for c in chunks)
    assert all(s in covered for s in sentences)


def test_no_overlap_across_sections_and_zero_overlap() -> None:
    chunks = chunk_document(doc(heading("A"), para("Alpha text."), heading("B"), para("Beta text.")), 300, 80)
    assert [c.text for c in chunks] == ["Alpha text.", "Beta text."]
    long = para(" ".join(f"Line {i} of the text is here." for i in range(30)))
    no_overlap = chunk_document(doc(long), 200, 0)
    assert "".join(c.text.replace(" ", "") for c in no_overlap) == long.text.replace(" ", "")


def test_qa_pairs_stay_whole() -> None:
    answer = "Call the hotline. " * 80  # far longer than a chunk
    chunks = chunk_document(doc(
        heading("Cards"), para("Before."), Block(kind="qa", text="Lost card?", answer=answer), para("After."),
    ), 200, 50)
    assert [(c.is_qa, c.text) for c in chunks] == [(False, "Before."), (True, "Lost card?"), (False, "After.")]
    assert chunks[1].answer == answer and chunks[1].section == "Cards"


def test_chinese_without_spaces_is_split_by_sentence_and_size() -> None:
    sentences = [f"第{i}条：借记卡每日取现限额为五百美元，超过限额需要到网点办理。" for i in range(30)]
    chunks = chunk_document(doc(heading("银行卡"), para("".join(sentences))), 300, 60)
    assert len(chunks) > 3
    assert all(text_size(c.text) <= 300 for c in chunks)
    assert all(" " not in c.text for c in chunks)  # CJK sentences join without spaces
    overlap = chunks[1].text.split("第")[0]  # the overlap ends where the next sentence starts
    assert overlap == "超过限额需要到网点办理。" and chunks[0].text.endswith(overlap)  # cut at a clause
    # A CJK character weighs three: 300 units hold about 100 characters.
    assert all(len(c.text) <= 110 for c in chunks)


def test_a_sentence_longer_than_a_chunk_is_cut() -> None:
    run_on = "无标点的长句" * 200
    chunks = chunk_document(doc(para(run_on)), 150, 30)
    assert all(text_size(c.text) <= 150 for c in chunks)
    assert chunks[0].text[:20] == run_on[:20]
    words = " ".join(f"word{i}" for i in range(400))
    chunks = chunk_document(doc(para(words)), 200, 40)
    assert all(text_size(c.text) <= 200 for c in chunks)
    assert all(not c.text.startswith(" ") and "word" in c.text.split()[0] for c in chunks)


def test_mixed_language_sizes_and_sentences() -> None:
    assert text_size("abc") == 3
    assert text_size("银行abc") == 9
    assert split_sentences("Open 9-5. 周六休息。Closed Sundays! 是吗？好") == [
        "Open 9-5.", "周六休息。", "Closed Sundays!", "是吗？", "好",
    ]
    assert truncate("one two three four", 9) == "one two"


def test_embedding_text_and_ids() -> None:
    qa = Chunk(ordinal=0, section="Cards", text="Lost card?", is_qa=True, answer="Call us.")
    assert embedding_text("FAQ", qa) == "Lost card?"
    body = Chunk(ordinal=1, section="Lost cards", text="Freeze it.")
    assert embedding_text("Card Guide", body) == "Card Guide > Lost cards\nFreeze it."
    titled = Chunk(ordinal=1, section="Card Guide > Lost", text="Freeze it.")
    assert embedding_text("Card Guide", titled) == "Card Guide > Lost\nFreeze it."
    assert chunk_id("doc_1", body) == chunk_id("doc_1", body)
    assert chunk_id("doc_1", body) != chunk_id("doc_1", Chunk(ordinal=1, section="Lost cards", text="Freeze!"))
    assert chunk_id("doc_1", body) != chunk_id("doc_2", body)
