"""The intent classifier's math: trained on example utterances, predicts an intent and a confidence.

Each utterance is described twice: by its sentence embedding ``e`` (from the embedding model,
L2-normalised) and by ``h``, hashed character 2-4-grams and words weighted by IDF (L2-normalised),
which carries the exact wording and keeps the classifier useful for Chinese when the embedding
model is English-only. Two experts vote:

- a softmax (multinomial logistic) regression on ``[e; h]`` with a light L2 penalty, trained by
  L-BFGS (60 iterations: a few seconds for 10,000 examples on two cores). Retrained after a few
  examples changed (``train(..., previous=model)``), it starts from the previous weights (new
  intents from zero) and takes ``WARM_ITERATIONS``: the optimum moved little (the unchanged
  examples' hashed features are reused too);
- nearest examples: for each intent, the best similarity ``(e·eᵢ + h·hᵢ) / 2`` to one of its
  examples.

The score of intent ``c`` is ``log P_lr(c) + NEIGHBOUR_WEIGHT × maxsim(c)``; the confidence is its
softmax (NEIGHBOUR_WEIGHT chosen on Banking77 and a Chinese FAQ-intent set, where it beats the
regression alone on the same embeddings).

An utterance is *in scope* when its confidence and its similarity to the chosen intent's
examples both pass a :class:`Gate` learned from held-out examples, not set by hand: one example
in five of each intent (at least one of every intent with two or more) is held out, a model is
trained on the rest, and each held-out example is classified twice: as it is, and with its own
intent removed (an utterance no intent was taught, which should not pass). Of the gates that let
through ``KEEP_RIGHT`` of the correctly classified held-out examples, the one that stops most of
the others (intent removed, or misclassified) wins. With fewer than two intents, or nothing to
hold out, the gate is ``FALLBACK_GATE``; with few held-out examples the learned gate is drawn
towards it (``PRIOR_EXAMPLES``). Its similarity, 0.45, keeps a handful of short examples such as
"I need a human" from catching "do I need the receipt?" (0.38 with the built-in e5).
"""

from __future__ import annotations

import math
import re
import unicodedata
import zlib
from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
Scores = npt.NDArray[np.float64]
Indexes = npt.NDArray[np.int64]
Trained = tuple[list[str], Matrix | None]  # a regression's intents and weights

HASH_DIM = 1024
L2_PENALTY = 1e-5
LBFGS_ITERATIONS = 60
WARM_ITERATIONS = 15
WARM_SHARE = 0.9  # of the intents the previous regression must know to start from it
NEIGHBOUR_WEIGHT = 5.0
CANDIDATES = 8
TOP = 3  # intents a prediction lists
HOLDOUT_EVERY = 5
FALLBACK_GATE_SIMILARITY = 0.45
KEEP_RIGHT = 0.95
PRIOR_EXAMPLES = 20
GATE_STEPS = 24  # candidate thresholds per score, from its held-out quantiles
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


class Gate(msgspec.Struct, frozen=True, kw_only=True):
    """The least confidence and similarity of an in-scope utterance."""

    confidence: float
    similarity: float


FALLBACK_GATE = Gate(confidence=0.0, similarity=FALLBACK_GATE_SIMILARITY)


class Prediction(msgspec.Struct, frozen=True, kw_only=True):
    label: str | None
    confidence: float
    similarity: float
    in_scope: bool
    top: tuple[tuple[str, float], ...] = ()  # the likeliest intents with their confidence, best first


def normalise(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def _features(text: str) -> list[str]:
    padded = f" {normalise(text)} "
    grams = [padded[i:i + n] for n in (2, 3, 4) for i in range(len(padded) - n + 1)]
    return grams + ["w:" + word for word in _WORD.findall(padded)]


def hashed_counts(text: str, dim: int | None = None) -> dict[int, float]:
    """Signed feature hashing (CRC-32, stable across processes) of a text's n-grams."""
    counts: dict[int, float] = {}
    for feature in _features(text):
        value = zlib.crc32(feature.encode("utf-8"))
        index = value % (dim or HASH_DIM)
        counts[index] = counts.get(index, 0.0) + (1.0 if value & (1 << 20) else -1.0)
    return counts


def _hashed_matrix(counts: Sequence[dict[int, float]], idf: Matrix) -> Matrix:
    matrix = np.zeros((len(counts), idf.shape[0]), dtype=np.float32)
    for row, items in enumerate(counts):
        if items:
            matrix[row, list(items)] = list(items.values())
    matrix *= idf
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    normalised: Matrix = (matrix / np.maximum(norms, np.float32(1e-9))).astype(np.float32)
    return normalised


def _softmax_rows(logits: Matrix) -> Matrix:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probabilities: Matrix = (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)
    return probabilities


def _loss_and_gradient(weights: Matrix, x: Matrix, targets: Matrix, penalty: float) -> tuple[float, Matrix]:
    probabilities = _softmax_rows(x @ weights)
    n = x.shape[0]
    picked = probabilities[targets > 0]
    loss = float(-np.log(picked + 1e-12).sum() / n + 0.5 * penalty * float((weights[:-1] ** 2).sum()))
    gradient = (x.T @ (probabilities - targets) / n).astype(np.float32)
    gradient[:-1] += penalty * weights[:-1]
    return loss, gradient


def train_softmax(
    x: Matrix, y: npt.NDArray[np.int64], classes: int, *, penalty: float = L2_PENALTY,
    iterations: int | None = None, memory: int = 10, start: Matrix | None = None,
) -> Matrix:
    """Weights ``(features + 1, classes)`` (last row: bias) of an L2-penalised softmax regression,
    minimised with L-BFGS and a backtracking (Armijo) line search from ``start`` (zeros if None)."""
    x = np.hstack([x, np.ones((x.shape[0], 1), dtype=np.float32)])
    targets = np.zeros((x.shape[0], classes), dtype=np.float32)
    targets[np.arange(x.shape[0]), y] = 1.0
    weights = np.zeros((x.shape[1], classes), dtype=np.float32) if start is None else start.astype(np.float32)
    loss, gradient = _loss_and_gradient(weights, x, targets, penalty)
    steps: list[Matrix] = []
    changes: list[Matrix] = []
    for _ in range(iterations or LBFGS_ITERATIONS):
        direction = -gradient
        alphas: list[float] = []
        for step, change in zip(reversed(steps), reversed(changes), strict=True):
            alpha = float((step * direction).sum()) / float((change * step).sum())
            alphas.append(alpha)
            direction = direction - alpha * change
        if steps:
            direction *= float((steps[-1] * changes[-1]).sum()) / float((changes[-1] ** 2).sum())
        else:
            direction *= 0.1 / max(float(np.abs(gradient).max()), 1e-8)
        for (step, change), alpha in zip(zip(steps, changes, strict=True), reversed(alphas), strict=True):
            beta = float((change * direction).sum()) / float((change * step).sum())
            direction = direction + step * (alpha - beta)
        slope = float((gradient * direction).sum())
        if slope >= 0:  # not a descent direction: restart from the gradient
            direction, slope, steps, changes = -gradient, -float((gradient**2).sum()), [], []
        size = 1.0
        while True:
            candidate = (weights + size * direction).astype(np.float32)
            new_loss, new_gradient = _loss_and_gradient(candidate, x, targets, penalty)
            if new_loss <= loss + 1e-4 * size * slope or size < 1e-8:
                break
            size *= 0.5
        step, change = candidate - weights, new_gradient - gradient
        if float((change * step).sum()) > 1e-12:
            steps.append(step)
            changes.append(change)
            if len(steps) > memory:
                steps.pop(0)
                changes.pop(0)
        converged = abs(loss - new_loss) < 1e-7 * max(1.0, abs(loss))
        weights, loss, gradient = candidate, new_loss, new_gradient
        if converged:
            break
    return weights


class IntentModel:
    """A trained classifier; build one with :meth:`train`.

    ``predict`` is pure numpy on one utterance, single-threaded (``einsum``, not BLAS: no thread
    wake-ups on a busy machine): the regression's logits pick the ``CANDIDATES`` likeliest
    intents, and only their examples are compared with the utterance, so it stays well under a
    millisecond with 10,000 examples.
    """

    def __init__(
        self, labels: list[str], weights: Matrix | None, idf: Matrix, embeddings: Matrix, hashed: Matrix,
        example_labels: npt.NDArray[np.int64], gate: Gate = FALLBACK_GATE,
    ) -> None:
        self.labels = labels
        self.gate = gate
        self._weights = weights
        self._idf = idf
        self._embeddings = embeddings  # (n, dim), rows grouped by label
        # The hashed features of the examples as sparse rows (CSR).
        nonzero = np.nonzero(hashed)
        self._columns = nonzero[1].astype(np.int64)
        self._values = hashed[nonzero].astype(np.float32)
        self._row_starts = np.searchsorted(nonzero[0], np.arange(hashed.shape[0] + 1)).astype(np.int64)
        self._starts = np.searchsorted(example_labels, np.arange(len(labels) + 1)).astype(np.int64)
        self._trial: Trained | None = None  # the calibration regression, for a retraining to start from
        self._counts: CountRows | None = None  # the examples' hashed counts, for a retraining to reuse

    @classmethod
    def train(cls, texts: Sequence[str], labels: Sequence[str], embeddings: Matrix,
              previous: IntentModel | None = None) -> IntentModel:
        """Train on example ``texts`` with their ``labels`` and embeddings (one row per text),
        and learn the out-of-scope gate from held-out examples. ``previous``: a model trained on
        nearly the same examples, whose regressions (the calibration one and the final one) this
        one's start from."""
        if not (len(texts) == len(labels) == embeddings.shape[0]) or not texts:
            raise ValueError("need one label and one embedding row per example, and at least one example")
        e = np.asarray(embeddings, dtype=np.float32)
        known = previous._counts if previous is not None else None
        counts = known.of(texts) if known is not None else [hashed_counts(text) for text in texts]
        held = _held_out(texts, labels)
        gate, trial = FALLBACK_GATE, None
        if held and len(set(labels)) > 1:
            kept = np.setdiff1d(np.arange(len(texts)), held)
            trial = cls._fit([labels[i] for i in kept], [counts[i] for i in kept], e[kept],
                             start=previous._trial if previous is not None else None)
            gate = trial._learn_gate([texts[i] for i in held], [labels[i] for i in held], e[held])
        model = cls._fit(labels, counts, e, gate,
                         start=(previous.labels, previous._weights) if previous is not None else None)
        model._trial = (trial.labels, trial._weights) if trial is not None else None
        model._counts = CountRows(texts, counts)
        return model

    @classmethod
    def _fit(cls, labels: Sequence[str], counts: Sequence[dict[int, float]], e: Matrix,
             gate: Gate = FALLBACK_GATE, start: Trained | None = None) -> IntentModel:
        names = sorted(set(labels))
        index = {name: i for i, name in enumerate(names)}
        y = np.array([index[label] for label in labels], dtype=np.int64)
        order = np.argsort(y, kind="stable")
        document_frequency = np.zeros(HASH_DIM, dtype=np.float32)
        for items in counts:
            document_frequency[list(items)] += 1.0
        idf = (np.log((1.0 + len(counts)) / (1.0 + document_frequency)) + 1.0).astype(np.float32)
        hashed = _hashed_matrix(counts, idf)
        weights = None
        if len(names) > 1:
            initial = _carried(start, names, e.shape[1] + HASH_DIM + 1)
            weights = train_softmax(np.hstack([e, hashed]), y, len(names), start=initial,
                                    iterations=WARM_ITERATIONS if initial is not None else None)
        return cls(names, weights, idf, np.ascontiguousarray(e[order]), hashed[order], y[order], gate)

    def _learn_gate(self, texts: Sequence[str], labels: Sequence[str], e: Matrix) -> Gate:
        """The gate that best tells held-out examples (right ones pass, wrong ones don't) from the
        same examples with their own intent taken away (none should pass)."""
        known: list[tuple[float, float, bool]] = []
        unknown: list[tuple[float, float]] = []
        for text, label, vector in zip(texts, labels, e, strict=True):
            candidates, scores, nearest = self._rank(text, vector)
            confidence, similarity, top = _decide(candidates, scores, nearest)
            known.append((confidence, similarity, self.labels[top] == label))
            others = candidates != self.labels.index(label)
            if others.any():
                unknown.append(_decide(candidates[others], scores[others], nearest[others])[:2])
        if not unknown:
            return FALLBACK_GATE
        k = np.array([(c, s) for c, s, _ in known]), np.array([right for _, _, right in known])
        u = np.array(unknown)
        right = k[1]
        best: tuple[float, float, float] | None = None
        for confidence in _thresholds(np.concatenate([k[0][:, 0], u[:, 0]])):
            for similarity in _thresholds(np.concatenate([k[0][:, 1], u[:, 1]])):
                passed = (k[0][:, 0] >= confidence) & (k[0][:, 1] >= similarity)
                if right.any() and float(np.mean(passed[right])) < KEEP_RIGHT:
                    continue
                rejected = (u[:, 0] < confidence) | (u[:, 1] < similarity)
                score = float(np.mean(rejected)) + (float(np.mean(~passed[~right])) if (~right).any() else 0.0)
                if best is None or score > best[0] + 1e-9:
                    best = (score, confidence, similarity)
        assert best is not None
        # A few held-out examples say little: shrink towards the fallback gate as if it had been
        # learned from PRIOR_EXAMPLES examples.
        weight = len(known) / (len(known) + PRIOR_EXAMPLES)
        return Gate(confidence=round(weight * best[1] + (1 - weight) * FALLBACK_GATE.confidence, 4),
                    similarity=round(weight * best[2] + (1 - weight) * FALLBACK_GATE.similarity, 4))

    def _nearest(self, label: int, e: Matrix, h: Matrix) -> float:
        """The best ``(e·eᵢ + h·hᵢ) / 2`` over the examples of one intent."""
        first, last = int(self._starts[label]), int(self._starts[label + 1])
        semantic = np.einsum("ij,j->i", self._embeddings[first:last], e)
        begin, end = int(self._row_starts[first]), int(self._row_starts[last])
        products = self._values[begin:end] * h[self._columns[begin:end]]
        lexical = np.add.reduceat(products, self._row_starts[first:last] - begin) if end > begin else 0.0
        return float(np.max(semantic + lexical)) / 2

    def _rank(self, text: str, embedding: Matrix) -> tuple[Indexes, Scores, Scores]:
        """Candidate intents with their scores and nearest-example similarities."""
        e = np.asarray(embedding, dtype=np.float32).reshape(-1)
        counts = hashed_counts(text)
        h = np.zeros(HASH_DIM, dtype=np.float32)
        if counts:
            h[list(counts)] = list(counts.values())
        h *= self._idf
        h /= max(float(np.sqrt(np.einsum("i,i->", h, h))), 1e-9)
        if self._weights is None:
            candidates = np.arange(len(self.labels))
            scores = np.zeros(len(self.labels))
        else:
            logits = np.einsum("i,ij->j", e, self._weights[: e.shape[0]])
            logits += np.einsum("i,ij->j", h, self._weights[e.shape[0]:-1]) + self._weights[-1]
            logits = logits.astype(np.float64) - float(logits.max())
            log_probabilities = logits - math.log(float(np.exp(logits).sum()))
            candidates = np.argsort(-log_probabilities)[:CANDIDATES]
            scores = log_probabilities[candidates]
        nearest = np.array([self._nearest(int(label), e, h) for label in candidates], dtype=np.float64)
        return candidates.astype(np.int64), np.asarray(scores + NEIGHBOUR_WEIGHT * nearest, dtype=np.float64), nearest

    def predict(self, text: str, embedding: Matrix) -> Prediction:
        """The best intent for one utterance given its embedding (shape ``(dim,)``)."""
        candidates, scores, nearest = self._rank(text, embedding)
        confidence, similarity, top = _decide(candidates, scores, nearest)
        probabilities = np.exp(scores - scores.max())
        probabilities /= probabilities.sum()
        ranked = np.argsort(-probabilities, kind="stable")[:TOP]
        return Prediction(
            label=self.labels[top], confidence=confidence, similarity=similarity,
            in_scope=confidence >= self.gate.confidence and similarity >= self.gate.similarity,
            top=tuple((self.labels[int(candidates[i])], float(probabilities[i])) for i in ranked),
        )


class CountRows:
    """The hashed counts of example texts, kept compactly (sparse rows) so that retraining on
    nearly the same examples hashes only the new ones (hashing is most of a retraining's time)."""

    def __init__(self, texts: Sequence[str], counts: Sequence[dict[int, float]]) -> None:
        self._rows = {text: row for row, text in enumerate(texts)}
        self._starts = np.concatenate([[0], np.cumsum([len(c) for c in counts])]).astype(np.int64)
        total = int(self._starts[-1])
        self._columns = np.fromiter((k for c in counts for k in c), dtype=np.int16, count=total)
        self._values = np.fromiter((v for c in counts for v in c.values()), dtype=np.float32, count=total)

    def of(self, texts: Sequence[str]) -> list[dict[int, float]]:
        found = []
        for text in texts:
            row = self._rows.get(text)
            if row is None:
                found.append(hashed_counts(text))
                continue
            first, last = int(self._starts[row]), int(self._starts[row + 1])
            found.append(dict(zip(self._columns[first:last].tolist(), self._values[first:last].tolist(),
                                  strict=True)))
        return found


def _carried(start: Trained | None, names: list[str], rows: int) -> Matrix | None:
    """Starting weights for ``names`` from a previous regression: its column for each intent it
    knew, zeros for a new one; None (start from zero) when it knew too few of them."""
    if start is None or start[1] is None or start[1].shape[0] != rows:
        return None
    known = {name: i for i, name in enumerate(start[0])}
    if sum(name in known for name in names) < WARM_SHARE * len(names):
        return None
    weights = np.zeros((rows, len(names)), dtype=np.float32)
    for column, name in enumerate(names):
        if name in known:
            weights[:, column] = start[1][:, known[name]]
    return weights


def _decide(candidates: Indexes, scores: Scores, nearest: Scores) -> tuple[float, float, int]:
    """Confidence, similarity and label index of the best candidate."""
    probabilities = np.exp(scores - scores.max())
    probabilities /= probabilities.sum()
    top = int(np.argmax(probabilities))
    return float(probabilities[top]), float(nearest[top]), int(candidates[top])


def _held_out(texts: Sequence[str], labels: Sequence[str]) -> list[int]:
    """Indexes of the calibration examples: every ``HOLDOUT_EVERY``-th of each intent in a stable
    hashed order, at least one of each intent with two or more examples."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    held: list[int] = []
    for rows in by_label.values():
        if len(rows) < 2:
            continue
        rows = sorted(rows, key=lambda i: zlib.crc32(texts[i].encode("utf-8")))
        held.extend(rows[HOLDOUT_EVERY - 1 :: HOLDOUT_EVERY] or rows[:1])
    return sorted(held)


def _thresholds(values: Scores) -> list[float]:
    """Candidate thresholds: 0, then midpoints between neighbouring held-out quantiles."""
    points = np.unique(np.quantile(values, np.linspace(0, 1, GATE_STEPS + 1)))
    return [0.0, *((points[:-1] + points[1:]) / 2).tolist()]
