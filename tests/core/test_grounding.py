"""The built-in model's answer is trimmed and checked against the passages it was given: loops, echoes,
the wrong language and the refusal its prompt names are told apart from answers, in both languages."""

from __future__ import annotations

import pytest

from appliance.core.answer_checks import degenerate, first_sentences, grounding, is_refusal
from appliance.core.prompts import LOCAL_REFUSAL
from appliance.core.types import ChunkHit

HOURS = ChunkHit(chunk_id="c1", document="hours.md", section="Opening hours",
                 text="Branches are open 9:00 to 17:00 on weekdays and 9:00 to 13:00 on Saturdays.")


def test_repeated_rambling_is_cut_to_distinct_sentences() -> None:
    text = "We open at nine. We open at nine. We open at nine. Saturdays too. Call us. Bye."
    assert first_sentences(text, 3) == "We open at nine. Saturdays too. Call us."
    assert first_sentences("第一句。第一句。第二句！", 3) == "第一句。第二句！"


def test_an_invented_sentence_sinks_the_answer_even_beside_a_backed_one() -> None:
    backed = "Branches are open 9:00 to 17:00 on weekdays."
    assert grounding(backed, [HOURS]) == 1.0
    invented = backed + " Premium customers get free airport lounge access."
    assert grounding(invented, [HOURS]) < 0.5


@pytest.mark.parametrize(("answer", "question", "language", "fault"), [
    # Measured from SmolLM2-135M on the demo (issue 10): a loop, and an echo of the question.
    ("Ava, ahem, ahem. I'm sorry, Ava, ahem, ahem. Ava, ahem, ahem.", "Where is my parcel?", "en",
     "it repeats itself"),
    ("你们的转账手续费是多少？你们的转账手续费是", "你们的转账手续费是多少？", "zh",
     "it says nothing the question did not"),
    ("The transfer fee is 25 USD.", "转账手续费是多少？", "zh", "it is not in Chinese"),
    ("转账手续费为每笔25美元。", "What is the transfer fee?", "en", "it is not in English"),
    ("营业时间是周一到周五九点到五点，" * 3, "几点开门？", "zh", "it repeats itself"),
])
def test_degenerate_answers_are_named(answer: str, question: str, language: str, fault: str) -> None:
    assert degenerate(answer, question, language) == fault


@pytest.mark.parametrize(("answer", "question", "language"), [
    ("Branches are open 9:00 to 17:00 on weekdays.", "When are you open?", "en"),
    ("跨境汇款每笔手续费为25美元。", "跨境汇款手续费多少？", "zh"),
    ("您可以在 Lakeshore App 中冻结银行卡。", "卡丢了怎么办？", "zh"),  # a product name in Latin letters is fine
    ("Call 0800 555 0199, the 24-hour card hotline (挂失热线).", "Who do I call?", "en"),
    # Seen from SmolLM2: it names its subject three times, which is not a loop.
    ("A savings account is a type of account that earns interest. You open a savings account in the app, "
     "and a savings account has no fees.", "What is a savings account?", "en"),
])
def test_plain_answers_pass(answer: str, question: str, language: str) -> None:
    assert degenerate(answer, question, language) is None


def test_the_refusal_is_recognised_with_or_without_its_punctuation_in_either_language() -> None:
    assert is_refusal(LOCAL_REFUSAL["en"])
    assert is_refusal('"sorry, I don\'t have that information"')
    assert is_refusal("抱歉，资料中没有这个问题的答案")
    assert is_refusal("抱歉资料中没有这个问题的答案。")
    assert not is_refusal("Sorry, the fee is 25 USD.")
    assert not is_refusal("抱歉，跨境汇款每笔收费25美元。")
