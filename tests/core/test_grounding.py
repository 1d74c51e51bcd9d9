"""The built-in model's answer is trimmed and checked against the passages it was given."""

from __future__ import annotations

from appliance.core.agent import first_sentences, grounding
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
