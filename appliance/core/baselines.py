"""Plain baselines that ``appliance eval`` prints beside the product's own figures.

A customer's data is judged against what a simple method gets on the same data: character
BM25 for retrieval (words for alphabetic text, character bigrams for CJK text, Okapi BM25 with
k1 = 1.2, b = 0.75), and logistic regression on the same sentence embeddings for intents.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from appliance.core.intents import normalise, train_softmax
from appliance.core.retrieval import character_bigrams, cjk_runs, word_terms

K1 = 1.2
B = 0.75


def bm25_terms(text: str) -> list[str]:
    """Lower-cased words, and every character bigram (a lone character: itself) of CJK runs."""
    text = normalise(text)
    terms = word_terms(text)
    for run in cjk_runs(text):
        terms.extend(character_bigrams(run))
    return terms


class CharacterBM25:
    def __init__(self, documents: Sequence[str]) -> None:
        self._counts = [Counter(bm25_terms(document)) for document in documents]
        self._lengths = [sum(counts.values()) for counts in self._counts]
        self._average = sum(self._lengths) / max(len(self._lengths), 1) or 1.0
        frequency: Counter[str] = Counter()
        for counts in self._counts:
            frequency.update(counts.keys())
        n = len(self._counts)
        self._idf = {term: math.log(1 + (n - df + 0.5) / (df + 0.5)) for term, df in frequency.items()}

    def rank(self, query: str) -> list[int]:
        """Indexes of the documents sharing a term with ``query``, best first."""
        wanted = set(bm25_terms(query))
        scores: list[tuple[float, int]] = []
        for index, (counts, length) in enumerate(zip(self._counts, self._lengths, strict=True)):
            score = 0.0
            for term in wanted & counts.keys():
                tf = counts[term]
                score += self._idf[term] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / self._average))
            if score > 0:
                scores.append((score, index))
        return [index for _, index in sorted(scores, key=lambda pair: (-pair[0], pair[1]))]


def logistic_regression(
    train: npt.NDArray[np.float32], labels: Sequence[str], test: npt.NDArray[np.float32],
) -> list[str]:
    """The label a softmax regression on the embeddings alone predicts for each test row."""
    names = sorted(set(labels))
    index = {name: i for i, name in enumerate(names)}
    weights = train_softmax(train, np.array([index[label] for label in labels], dtype=np.int64), len(names))
    logits = np.hstack([test, np.ones((test.shape[0], 1), dtype=np.float32)]) @ weights
    return [names[int(i)] for i in np.argmax(logits, axis=1)]
