"""The intent classifier's math, with stand-in embeddings (a deterministic bag-of-words projection).

Accuracy on Banking77 with the real embedding model is measured by ``appliance eval intents``
(see the README); these tests pin the behaviour: training, prediction, the out-of-scope gate learned from
held-out examples.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import pytest

from appliance.core.intents import FALLBACK_GATE, Gate, IntentModel, hashed_counts, normalise, train_softmax

DIM = 64


def embed(text: str) -> np.ndarray:
    """A stand-in sentence embedding: words (CJK characters one by one) hashed to random vectors,
    summed, normalised."""
    vector = np.zeros(DIM, dtype=np.float32)
    for word in re.findall(r"[a-z0-9]+|[\u4e00-\u9fff]", text.lower()):
        vector += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(DIM).astype(np.float32)
    norm = np.linalg.norm(vector)
    return vector / norm if norm else vector


EXAMPLES = {
    "handoff": ["I want to talk to a human", "let me speak to an agent", "connect me to a real person",
                "can I chat with customer service staff", "转人工", "我要找人工客服", "人工服务"],
    "order_status": ["where is my order", "track my package", "has my parcel shipped yet",
                     "when will my delivery arrive", "我的快递到哪里了", "查一下我的订单", "包裹什么时候到"],
    "card_lost": ["I lost my card", "my card was stolen", "block my credit card please",
                  "someone took my debit card", "银行卡丢了", "我的卡被偷了", "信用卡挂失"],
}


def train() -> IntentModel:
    texts = [text for examples in EXAMPLES.values() for text in examples]
    labels = [label for label, examples in EXAMPLES.items() for _ in examples]
    return IntentModel.train(texts, labels, np.vstack([embed(t) for t in texts]))


def predict(model: IntentModel, text: str) -> tuple[str | None, bool]:
    prediction = model.predict(text, embed(text))
    return prediction.label, prediction.in_scope


@pytest.mark.parametrize(("text", "label"), [
    ("I would like to talk to a human agent", "handoff"),
    ("please connect me with a person", "handoff"),
    ("where is my package", "order_status"),
    ("my debit card was stolen yesterday", "card_lost"),
    ("我要人工", "handoff"),
    ("我的订单到哪里了", "order_status"),
    ("我的银行卡丢了怎么办", "card_lost"),
])
def test_routes_paraphrases_in_english_and_chinese(text: str, label: str) -> None:
    assert predict(train(), text) == (label, True)


def test_unrelated_text_is_out_of_scope() -> None:
    model = train()
    for text in ("what's the weather like on mars", "recommend a good jazz album", "今天天气怎么样"):
        label, in_scope = predict(model, text)
        assert not in_scope, (text, label)


def test_confidence_and_similarity_are_reported() -> None:
    model = train()
    exact = model.predict("where is my order", embed("where is my order"))
    assert exact.label == "order_status" and exact.similarity == pytest.approx(1.0, abs=1e-3)
    assert 0.5 < exact.confidence <= 1.0 and exact.in_scope


def test_the_gate_is_learned_from_held_out_examples_not_fixed() -> None:
    model = train()
    assert model.gate != FALLBACK_GATE
    assert 0.0 <= model.gate.confidence < 1.0 and 0.0 < model.gate.similarity < 1.0
    # Examples unlike one another within each intent teach a gate that lets more through.
    texts = [text for examples in EXAMPLES.values() for text in examples]
    labels = [label for label, examples in EXAMPLES.items() for _ in examples]
    scrambled = np.vstack([embed(f"{t} {i}") for i, t in enumerate(texts)])
    assert IntentModel.train(texts, labels, scrambled).gate != model.gate


def test_an_impossible_gate_rejects_everything() -> None:
    texts = [text for examples in EXAMPLES.values() for text in examples]
    labels = [label for label, examples in EXAMPLES.items() for _ in examples]
    model = IntentModel.train(texts, labels, np.vstack([embed(t) for t in texts]))
    model.gate = Gate(confidence=1.01, similarity=0.0)
    assert not model.predict("where is my order", embed("where is my order")).in_scope


def test_a_single_intent_relies_on_similarity() -> None:
    texts = ["talk to a human", "speak to an agent"]
    model = IntentModel.train(texts, ["handoff", "handoff"], np.vstack([embed(t) for t in texts]))
    assert predict(model, "I need to speak to a human") == ("handoff", True)
    assert predict(model, "bake a chocolate cake")[1] is False


def test_training_rejects_mismatched_input() -> None:
    with pytest.raises(ValueError):
        IntentModel.train(["a"], ["x", "y"], np.zeros((1, DIM), dtype=np.float32))
    with pytest.raises(ValueError):
        IntentModel.train([], [], np.zeros((0, DIM), dtype=np.float32))


def test_a_retraining_started_from_the_previous_model_learns_what_changed() -> None:
    base = train()
    assert predict(base, "what time does the branch open on saturday")[1] is False
    more = {**EXAMPLES, "branch_hours": ["when does the branch open", "branch opening hours on saturday",
                                         "网点几点开门"],
            "handoff": [*EXAMPLES["handoff"], "I want to complain to your manager"]}
    texts = [text for examples in more.values() for text in examples]
    labels = [label for label, examples in more.items() for _ in examples]
    vectors = np.vstack([embed(t) for t in texts])
    warm = IntentModel.train(texts, labels, vectors, previous=base)
    cold = IntentModel.train(texts, labels, vectors)
    for text, label in [("what time does the branch open on saturday", "branch_hours"),
                        ("I would like to complain to the manager", "handoff"), ("网点几点开门呢", "branch_hours"),
                        ("where is my package", "order_status"), ("my debit card was stolen yesterday", "card_lost")]:
        assert predict(warm, text) == predict(cold, text) == (label, True), text
    # Too few intents in common: trained afresh, as if there were no previous model.
    other = IntentModel.train(["hello", "hi there", "bye", "see you"], ["hi", "hi", "bye", "bye"],
                              np.vstack([embed(t) for t in ["hello", "hi there", "bye", "see you"]]), previous=base)
    assert predict(other, "hello there") == ("hi", True)


def test_softmax_regression_separates_classes() -> None:
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((4, 16)).astype(np.float32) * 3
    y = rng.integers(0, 4, size=400)
    x = (centres[y] + rng.standard_normal((400, 16))).astype(np.float32)
    weights = train_softmax(x, y, 4)
    logits = np.hstack([x, np.ones((400, 1), dtype=np.float32)]) @ weights
    assert (logits.argmax(axis=1) == y).mean() > 0.95


def test_hashing_is_stable_and_normalises_text() -> None:
    assert normalise("  Ｈｅｌｌｏ   World ") == "hello world"
    assert hashed_counts("Lost card") == hashed_counts("lost   CARD")
    assert hashed_counts("银行卡") != hashed_counts("信用卡")
