"""What the built-in model's answer must pass before a visitor sees it.

A small model on the CPU rambles, repeats itself, echoes the question, drifts into another
language or states what the passages don't say. Each check here names the fault it finds, so
the trace can say why the answer was replaced (by an extractive quote, see ``core.agent``).
"""

from __future__ import annotations

import re
from collections import Counter

from appliance.core.chunking import split_sentences
from appliance.core.prompts import LOCAL_REFUSAL
from appliance.core.retrieval import content_terms, word_terms
from appliance.core.types import ChunkHit

_REPEATS = 3  # the same phrase this many times is a loop, not an answer
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_UNPUNCTUATED = re.compile(r"[\s\"'“”‘’.,!?，。！？：:；;]+")


def first_sentences(text: str, limit: int) -> str:
    """The first ``limit`` distinct sentences: a small model rambles and repeats itself."""
    kept: list[str] = []
    for sentence in split_sentences(text.strip()):
        if sentence.strip() and sentence.strip() not in kept:
            kept.append(sentence.strip())
        if len(kept) == limit:
            break
    return "".join(k if k.endswith(("。", "！", "？")) else k + " " for k in kept).strip()


def grounding(answer: str, chunks: list[ChunkHit]) -> float:
    """How well the passages back the answer: the least-backed sentence's share of content terms
    found in the chunks (1.0: every term of every sentence is there)."""
    context = set(content_terms(" ".join(f"{c.section} {c.text} {c.answer}" for c in chunks)))
    shares = []
    for sentence in split_sentences(answer):
        terms = content_terms(sentence)
        if terms:
            shares.append(sum(term in context for term in terms) / len(terms))
    return min(shares, default=1.0)


def is_refusal(answer: str) -> bool:
    """Whether the model said the passages don't answer (the sentence its prompt names, in
    either language, with or without its punctuation)."""
    flat = _UNPUNCTUATED.sub("", answer).lower()
    return any(_UNPUNCTUATED.sub("", sentence).lower() in flat for sentence in LOCAL_REFUSAL.values())


def degenerate(answer: str, question: str, language: str) -> str | None:
    """Why ``answer`` is no answer to ``question`` for a visitor writing ``language``; None if it may be."""
    if _loops(answer):
        return "it repeats itself"
    if not set(content_terms(answer)) - set(content_terms(question)):
        return "it says nothing the question did not"
    cjk = len(_CJK.findall(answer))
    letters = cjk + sum(c.isascii() and c.isalpha() for c in answer)
    if language == "zh" and cjk == 0:
        return "it is not in Chinese"
    if language == "en" and letters and cjk / letters > 0.5:
        return "it is not in English"
    return None


def _loops(answer: str) -> bool:
    """The same 3 words, or the same 6 CJK characters, at least ``_REPEATS`` times, in a text
    that is mostly repetition (fewer than half its words, or characters, distinct). A plain answer
    may name "a savings account" three times; a loop says little else."""
    for units, n in ((word_terms(answer), 3), (_CJK.findall(answer), 6)):
        grams = Counter(tuple(units[i:i + n]) for i in range(len(units) - n + 1))
        if grams and grams.most_common(1)[0][1] >= _REPEATS and len(set(units)) < len(units) / 2:
            return True
    return False
