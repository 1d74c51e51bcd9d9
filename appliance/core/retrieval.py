"""Ranking decisions over knowledge-base hits: fusion, relevance, direct Q&A answers, extraction.

The store produces ranked candidate lists (BM25 over words and CJK character bigrams, vector
KNN); :func:`convex_fusion` merges them. What counts as *relevant* combines the
embedding's cosine similarity (multilingual-e5-small, centred: see build/e5_center.py) with lexical
coverage (the share of the query's content terms that the chunk contains): either is evidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from appliance.core.chunking import CJK_CHAR, join_sentences, split_sentences, text_size, truncate
from appliance.core.config import KnowledgeConfig
from appliance.core.types import ChunkHit, Citation

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_CJK_RUN = re.compile(CJK_CHAR.pattern + "+")
STOPWORDS = frozenset({
    "a", "about", "above", "after", "again", "all", "am", "an", "and", "any", "are", "as", "at", "be",
    "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does",
    "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having",
    "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself",
    "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once",
    "only", "or", "other", "our", "ours", "out", "over", "own", "please", "same", "she", "should", "so",
    "some", "such", "than", "that", "the", "their", "theirs", "them", "then", "there", "these", "they",
    "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what",
    "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your",
    "yours", "yourself", "hi", "hello", "hey", "thanks", "thank", "can't", "cannot", "i'm", "im", "want",
    "need", "get", "got", "tell", "know", "let", "like"
})
CJK_PARTICLES = frozenset("的吗呢吧啊呀")
CJK_STOP = frozenset("的了吗呢吧啊呀么是我你您他她它们在和与及或请问有没怎如何什哪里为多少可以能会要这那个吧")


def _stem(word: str) -> str:
    """A light English plural/verb-ending stemmer: enough for "cards" ~ "card", "fees" ~ "fee"."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def word_terms(text: str) -> list[str]:
    """Lower-cased non-CJK words of ``text`` in order (stop words included)."""
    words: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        words.extend(part for part in _CJK_RUN.split(token) if part)
    return words


def cjk_runs(text: str) -> list[str]:
    return _CJK_RUN.findall(text)


def content_terms(text: str) -> list[str]:
    """Distinct content terms, in order: stemmed non-stop words, and CJK bigrams (a single CJK
    character when it stands alone), skipping bigrams made only of function characters."""
    terms: dict[str, None] = {}
    for word in word_terms(text):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            terms[_stem(word)] = None
    for run in cjk_runs(text):
        terms.update(dict.fromkeys(cjk_bigrams(run)))
    return list(terms)


def character_bigrams(run: str) -> list[str]:
    """The overlapping character bigrams of a CJK run (the character itself for a run of one)."""
    return [run] if len(run) == 1 else [run[index:index + 2] for index in range(len(run) - 1)]


def cjk_bigrams(run: str) -> list[str]:
    """The content bigrams of a CJK run (the character itself for a run of one): bigrams made
    only of function characters, or holding a sentence particle, are left out."""
    if len(run) == 1:
        return [] if run in CJK_STOP else [run]
    grams = character_bigrams(run)
    return [gram for gram in grams if not (gram[0] in CJK_STOP and gram[1] in CJK_STOP)
            and gram[0] not in CJK_PARTICLES and gram[1] not in CJK_PARTICLES]


def term_coverage(query: str, text: str) -> float:
    """Share of the query's content terms found in ``text`` (0 when the query has none)."""
    wanted = content_terms(query)
    if not wanted:
        return 0.0
    have = set(content_terms(text))
    return sum(1 for term in wanted if term in have) / len(wanted)


# Cosine of unrelated texts under the built-in model (multilingual-e5-small centred per script:
# ~0.0–0.25 in either language).
# Vector scores are measured from here, so chunks that are all unrelated don't outvote BM25.
UNRELATED_COSINE = 0.25


def convex_fusion(
    lexical: Sequence[tuple[int, float]], vector: Sequence[tuple[int, float]], *, lexical_weight: float = 0.35,
    floor: float = UNRELATED_COSINE,
) -> list[tuple[int, float]]:
    """Ids from a BM25 ranking and a vector ranking (``(id, score)``, best first), fused best first.

    Each side is scaled to [0, 1]: BM25 divided by its best score, cosine as
    ``(cos − floor) / (best − floor)`` (0 at or below the floor). An id scores
    ``w × bm25 + (1 − w) × cosine``, a missing side counting 0. Unlike rank fusion this keeps how
    far apart candidates are: a chunk far ahead on one side is not pulled level by a middling rank
    on the other. Measured on a Chinese FAQ set and the bilingual demo set, the fused ranking
    beats each side alone and character BM25 (see README).
    """
    best = max((score for _, score in lexical), default=0.0)
    bm25 = {item: score / best for item, score in lexical} if best > 0 else {}
    top = max((score for _, score in vector), default=floor)
    near = {item: max(score - floor, 0.0) / (top - floor) if top > floor else 0.0 for item, score in vector}
    fused = {item: lexical_weight * bm25.get(item, 0.0) + (1 - lexical_weight) * near.get(item, 0.0)
             for item in (*bm25, *near)}
    if not bm25 or top <= floor:  # one side only: its own order
        fused = bm25 or {item: score for item, score in vector}
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))


def _hit_text(hit: ChunkHit) -> str:
    return f"{hit.section}\n{hit.text}\n{hit.answer}"


def is_relevant(query: str, hit: ChunkHit, config: KnowledgeConfig) -> bool:
    """Close in meaning (cosine at least ``min_relevance``, where the embedding is trusted for the
    query's language) or holding at least ``min_term_coverage`` of the query's content terms."""
    coverage = term_coverage(query, _hit_text(hit))
    if coverage >= config.min_term_coverage:
        return True
    return hit.vector_similarity is not None and hit.vector_similarity >= config.min_relevance


def relevant_hits(query: str, hits: Iterable[ChunkHit], config: KnowledgeConfig) -> list[ChunkHit]:
    """The hits worth showing to a model or citing, in their order; empty means "I don't know"."""
    return [hit for hit in hits if is_relevant(query, hit, config)]


def qa_similarity(query: str, hit: ChunkHit, config: KnowledgeConfig) -> float:
    """How closely the query restates a Q&A pair's question: the better of the embedding's cosine
    and the Dice overlap of content terms."""
    mine, theirs = set(content_terms(query)), set(content_terms(hit.text))
    dice = 2 * len(mine & theirs) / (len(mine) + len(theirs)) if mine and theirs else 0.0
    return max(hit.vector_similarity or 0.0, dice)


def direct_answer(query: str, hits: Sequence[ChunkHit], config: KnowledgeConfig) -> ChunkHit | None:
    """The Q&A pair that answers the query outright, without a model: the best-fused Q&A hit
    among the top ``top_k`` whose similarity to the query reaches ``qa_direct_threshold``."""
    for hit in hits[: max(config.top_k, 1)]:
        if hit.is_qa and hit.answer and qa_similarity(query, hit, config) >= config.qa_direct_threshold:
            return hit
    return None


def extract_answer(query: str, hit: ChunkHit, *, max_chars: int = 400) -> str:
    """The sentence(s) of ``hit`` that best answer ``query``, quoted verbatim.

    A Q&A pair gives its answer. Otherwise each sentence (or list line) scores by the query
    terms it contains; the best one is returned, with the next sentence when it is short, or
    the lines after it when it introduces a list, up to ``max_chars`` (measured like chunk sizes).
    Empty when no sentence (for a Q&A pair: neither its question nor its answer) has any of the
    query's terms.
    """
    wanted = set(content_terms(query))
    if hit.is_qa and hit.answer:
        shared = wanted & set(content_terms(f"{hit.text} {hit.answer}"))
        return hit.answer if shared or not wanted else ""
    sentences = split_sentences(hit.text)
    if not sentences:
        return hit.text[:max_chars]

    def score(sentence: str) -> float:
        have = set(content_terms(sentence))
        return sum(2.0 if CJK_CHAR.match(term) else 1.0 + min(len(term), 10) / 10 for term in wanted & have)

    scores = [score(sentence) for sentence in sentences]
    best = max(range(len(sentences)), key=lambda index: (scores[index], -index))
    if wanted and scores[best] == 0:
        return ""  # no sentence shares a word with the question: a quote would be a guess
    chosen = [sentences[best]]
    size = text_size(chosen[0])
    introduces = chosen[0].endswith((":", "："))
    for following in sentences[best + 1:]:
        if not (introduces or (len(chosen) == 1 and size < 60)) or size + text_size(following) > max_chars:
            break
        chosen.append(following)
        size += text_size(following) + 1
    if _line_based(hit.text):
        return truncate(join_sentences(chosen, "\n"), max_chars)
    return truncate(join_sentences(chosen), max_chars)


def _line_based(text: str) -> bool:
    """True when the chunk is made of lines (list items, table rows) rather than running prose."""
    return text.count("\n") >= 1 and all(len(line) < 200 for line in text.split("\n"))


def citations(hits: Iterable[ChunkHit]) -> list[Citation]:
    return [
        Citation(chunk_id=hit.chunk_id, document=hit.document, section=hit.section, score=round(hit.score, 4))
        for hit in hits
    ]
