"""Default FAQ retriever: lexical, multilingual, fast enough to run on every message.

Three views of the FAQ are scored and blended:

* the whole entry (question, tags, examples and answer) as one document with per-field
  weights (BM25F), which rewards entries whose vocabulary covers the customer's words;
* each single phrasing (the question, one example or the tags) on its own, keeping the best
  one per entry, because a customer message usually paraphrases exactly one of them and a
  close match there is stronger evidence than words scattered across a long answer;
* character n-grams of the entry's words in a TF-IDF vector compared by cosine, for the
  best entries by words: they catch word forms, compounds and typos, and go wrong on
  other messages than whole words do, so the blend beats either.

The scores are divided by what the query could score at most, so they mean "share of the
query's information that was matched" whatever the FAQ's size; the confidence is a
logistic function of that share for the top entry and of its lead over the runner-up.

This module blends; the word views' postings are ``bm25``, the n-gram view is
``char_ngrams``, and ``entry_terms`` splits the FAQ's texts once for all three.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.knowledge.bm25 import Postings, single_fields, weighted_fields
from bot.knowledge.char_ngrams import CharNgramIndex
from bot.knowledge.entry_terms import EntryTerms, content_words, split_entries
from bot.knowledge.faq import FaqEntry, SearchResult
from bot.knowledge.text import Analyzer, surface_words


@dataclass(frozen=True)
class SearchParams:
    """General ranking parameters; none depends on a particular FAQ's vocabulary."""

    k1: float = 3.0
    b: float = 0.9
    question_weight: float = 1.0
    tags_weight: float = 1.0
    examples_weight: float = 1.0
    answer_weight: float = 1.0
    passage_weight: float = 0.3  # blend weight of the best single phrasing
    # Postings are kept best first; a query reads at most this many per term. Terms this
    # common carry little weight, and reading them whole would cost time on large FAQs.
    max_postings: int = 400
    # Character n-grams (padded at word edges) in TF-IDF vectors compared by cosine: they
    # match word forms, compounds and typos that whole words miss, and they err on other
    # messages than BM25 does, so the blend beats either alone.
    ngram_weight: float = 1.0  # blend weight of the character n-gram cosine
    ngram_min: int = 3
    ngram_max: int = 4
    ngram_candidates: int = 60  # entries scored by n-grams, best by words first
    # Field weights of the n-gram vectors: the answer speaks the shop's language more than
    # the customer's, so it counts for less there.
    ngram_question_weight: float = 1.0
    ngram_tags_weight: float = 1.0
    ngram_examples_weight: float = 1.0
    ngram_answer_weight: float = 0.3
    # confidence = sigmoid(conf_top * top + conf_margin * (top - second) + conf_bias): a
    # logistic fit of "the top entry is right", so the number reads as a probability.
    conf_top: float = 2.835
    conf_margin: float = 19.082
    conf_bias: float = -1.530


DEFAULT_PARAMS = SearchParams()


def _by_score(item: tuple[int, float]) -> tuple[float, int]:
    return item[1], -item[0]  # ties go to the entry written first


class FaqIndex:
    """Searchable snapshot of a FAQ; build once per knowledge version, query many times."""

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        *,
        language: str = "english",
        params: SearchParams = DEFAULT_PARAMS,
    ) -> None:
        # The build allocates millions of small objects and no cycles; pausing the cyclic
        # collector meanwhile saves it from rescanning them all many times over.
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            self._build(entries, language, params)
        finally:
            if was_enabled:
                gc.enable()

    def _build(self, entries: Sequence[FaqEntry], language: str, params: SearchParams) -> None:
        self._entries = tuple(entries)
        self._params = params
        self._analyzer = Analyzer(language)
        p = params
        terms = split_entries(
            self._entries,
            self._analyzer.terms_of,
            (
                p.ngram_question_weight,
                p.ngram_tags_weight,
                p.ngram_examples_weight,
                p.ngram_answer_weight,
            ),
        )
        self._entry_index = self._whole_entry_index(terms)
        self._passage_index, self._passage_owner = self._phrasing_index(terms)
        self._ngrams = (
            CharNgramIndex(terms.surface, p.ngram_min, p.ngram_max) if p.ngram_weight > 0 else None
        )

    def state(self) -> tuple[Any, ...]:
        """The built index as plain values, to keep on disk (``bot.knowledge.word_index_cache``):
        building it is most of a large FAQ's start-up time, reading it back a tenth."""
        ngrams = self._ngrams.state() if self._ngrams is not None else None
        return (
            self._entry_index.state(),
            self._passage_index.state(),
            self._passage_owner,
            ngrams,
        )

    @classmethod
    def from_state(
        cls,
        entries: Sequence[FaqEntry],
        state: tuple[Any, ...],
        *,
        language: str = "english",
        params: SearchParams = DEFAULT_PARAMS,
    ) -> FaqIndex:
        """The index ``state()`` gave for these entries, language and parameters."""
        entry_index, passage_index, passage_owner, ngrams = state
        index = cls.__new__(cls)
        index._entries = tuple(entries)
        index._params = params
        index._analyzer = Analyzer(language)
        index._entry_index = Postings.from_state(entry_index)
        index._passage_index = Postings.from_state(passage_index)
        index._passage_owner = passage_owner
        index._ngrams = CharNgramIndex.from_state(ngrams) if ngrams is not None else None
        return index

    def consistent(self) -> bool:
        """Whether every part of the index counts the same entries: a cheap check that a
        state read back belongs to these entries."""
        n = len(self._entries)
        views = [
            self._entry_index.n_docs == n,
            self._passage_index.n_docs == len(self._passage_owner),
        ]
        views.append(all(0 <= owner < n for owner in self._passage_owner))
        if self._ngrams is not None:
            views.append(self._ngrams.entries() == n)
        return all(views)

    def _whole_entry_index(self, terms: EntryTerms) -> Postings:
        """Each entry as one document of four weighted fields (BM25F)."""
        p = self._params
        fields = [
            (terms.questions, p.question_weight),
            (terms.tags, p.tags_weight),
            (terms.examples, p.examples_weight),
            (terms.answers, p.answer_weight),
        ]
        docs = weighted_fields(fields, len(self._entries))
        return Postings.build(docs, p.k1, p.b, p.max_postings)

    def _phrasing_index(self, terms: EntryTerms) -> tuple[Postings, list[int]]:
        """One passage per phrasing, and the entry each passage belongs to.

        A phrasing is the question, each example, or the tags together, which name the
        topic in a customer's short words ("refund", "track order") and would otherwise
        drown in the long answer of the whole-entry view.
        """
        p = self._params
        phrasings = [
            (doc_id, counts)
            for doc_id in range(len(self._entries))
            for counts in (
                terms.questions[doc_id],
                *terms.example_lists[doc_id],
                terms.tags[doc_id],
            )
            if counts
        ]
        docs = single_fields([counts for _, counts in phrasings])
        owner = [doc_id for doc_id, _ in phrasings]
        return Postings.build(docs, p.k1, p.b, p.max_postings), owner

    def __len__(self) -> int:
        return len(self._entries)

    def search(self, query: str, top_k: int = 3) -> list[SearchResult]:
        if top_k <= 0 or not self._entries:
            return []
        surface = surface_words(query)
        tokens = content_words(surface)
        q = Counter(self._analyzer.terms_of(tokens))
        if not q:
            return []
        scores, candidates, floor = self._scores(q, surface)
        if not scores:
            return []
        want = max(top_k, 2)
        ranked = None
        if len(candidates) >= want:
            # Entries outside the n-gram candidates score no more than ``floor``, and
            # every candidate at least that, so when the last of the best candidates
            # beats it, ranking the candidates alone gives the same list as ranking all.
            ranked = heapq.nlargest(want, ((d, scores[d]) for d in candidates), key=_by_score)
            if ranked[-1][1] <= floor:
                ranked = None
        if ranked is None:
            ranked = heapq.nlargest(want, scores.items(), key=_by_score)
        top = ranked[0][1]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        confidence = self._confidence(top, second)
        results = []
        for rank, (doc_id, score) in enumerate(ranked[:top_k]):
            conf = confidence if rank == 0 else self._confidence(score, top)
            results.append(SearchResult(self._entries[doc_id], score, conf))
        return results

    def knows_every_word(self, query: str) -> bool:
        """Whether every content word of ``query`` occurs in the FAQ: then the word
        scores saw all the message says. "when will my reimbursement arrive" meets the
        parcel entry on "when" and "arrive", and the word it does not know is the one
        that matters. Numbers (an order number, "30") are not words the FAQ could lack."""
        terms = self._analyzer.terms_of(content_words(surface_words(query)))
        lists = self._entry_index.lists
        return bool(terms) and all(term in lists or term.isdigit() for term in terms)

    def _scores(
        self, q: Counter[str], tokens: list[str]
    ) -> tuple[dict[int, float], list[int], float]:
        """Blended scores, the n-gram candidates, and the best score of any other entry."""
        p = self._params
        entry_scores, entry_best = self._entry_index.score(q, p.max_postings)
        if entry_best <= 0 or not entry_scores:
            return {}, [], 0.0
        total = 1.0 + p.passage_weight + p.ngram_weight
        inv = 1.0 / (entry_best * total)
        combined = {d: s * inv for d, s in entry_scores.items()}
        if p.passage_weight > 0:
            passage_scores, passage_best = self._passage_index.score(q, p.max_postings)
            best_per_entry: dict[int, float] = {}
            owner = self._passage_owner
            for pid, s in passage_scores.items():
                d = owner[pid]
                if s > best_per_entry.get(d, 0.0):
                    best_per_entry[d] = s
            w = p.passage_weight / (passage_best * total)
            for d, s in best_per_entry.items():
                combined[d] = combined.get(d, 0.0) + w * s
        candidates: list[int] = []
        floor = 0.0
        if self._ngrams is not None:  # n-grams of weight 0 are never built
            candidates = heapq.nlargest(p.ngram_candidates, combined, key=combined.__getitem__)
            # The candidates come best first, and n-grams only ever add to a score.
            floor = combined[candidates[-1]] if candidates else 0.0
            w = p.ngram_weight / total
            for d, s in self._ngrams.scores(tokens, candidates).items():
                combined[d] += w * s
        return combined, candidates, floor

    @property
    def baseline_confidence(self) -> float:
        """The confidence of a match that shares nothing with the message: the floor
        below which a word-level confidence says nothing."""
        return self._confidence(0.0, 0.0)

    def _confidence(self, score: float, rival: float) -> float:
        p = self._params
        z = p.conf_top * score + p.conf_margin * (score - rival) + p.conf_bias
        return 1.0 / (1.0 + math.exp(-z))
