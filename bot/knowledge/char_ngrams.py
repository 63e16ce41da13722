"""The FAQ search's character n-gram view: TF-IDF vectors of n-grams compared by cosine.

N-grams (padded at word edges) match word forms, compounds and typos that whole words
miss, and go wrong on other messages than whole words do, so blended with the word views
of ``bot.knowledge.search`` they beat either. Only the best entries by words are scored
here, and most of the work is done once, when the index is built.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from itertools import chain
from typing import Any

from bot.knowledge.text import is_cjk


class CharNgramIndex:
    """N-gram vectors of a FAQ's entries, each entry given as its weighted surface words."""

    def __init__(self, entry_words: Sequence[dict[str, float]], ngram_min: int, ngram_max: int):
        self._ngram_min = ngram_min
        self._ngram_max = ngram_max
        self._gram_cache: dict[str, tuple[str, ...]] = {}
        for word in set().union(*entry_words):
            self._grams(word, store=True)
        self._gram_words = self._words_per_gram()
        n_entries = len(entry_words)
        # The idf of every FAQ n-gram, worked out once rather than twice per query
        # n-gram; n-grams the FAQ lacks all share the idf of a document frequency of 0.
        self._gram_idfs = {
            g: _smooth_idf(n_entries, df)
            for g, df in self._document_frequencies(entry_words).items()
        }
        self._gram_idf_unknown = _smooth_idf(n_entries, 0)
        # Each entry's words with their sublinear weights, worked out once here
        # rather than for every candidate of every query.
        self._entry_weights = [
            tuple((w, _sublinear(c)) for w, c in ew.items()) for ew in entry_words
        ]
        self._gram_norms = self._entry_norms()

    _STATE = (
        "_ngram_min",
        "_ngram_max",
        "_gram_cache",
        "_gram_words",
        "_gram_idfs",
        "_gram_idf_unknown",
        "_entry_weights",
        "_gram_norms",
    )

    def state(self) -> tuple[Any, ...]:
        """Plain values to keep on disk (``bot.knowledge.word_index_cache``)."""
        return tuple(getattr(self, name) for name in self._STATE)

    @classmethod
    def from_state(cls, state: tuple[Any, ...]) -> CharNgramIndex:
        index = cls.__new__(cls)
        for name, value in zip(cls._STATE, state, strict=True):
            setattr(index, name, value)
        return index

    def entries(self) -> int:
        return len(self._gram_norms)

    def _words_per_gram(self) -> dict[str, tuple[str, ...]]:
        """Which FAQ words hold each n-gram, so that a query can tell the words it
        shares nothing with, whose dot product is zero, without working it out."""
        gram_words: dict[str, list[str]] = defaultdict(list)
        for word, word_grams in self._gram_cache.items():
            for gram in dict.fromkeys(word_grams):
                gram_words[gram].append(word)
        return {g: tuple(ws) for g, ws in gram_words.items()}

    def _document_frequencies(self, entry_words: Sequence[dict[str, float]]) -> Counter[str]:
        """An n-gram's document frequency is the number of entries holding any of its
        words: one word's entry count, or the size of a union for n-grams that several
        words share. Counting per entry instead would touch every n-gram of every word
        of every entry, many times more."""
        word_entries: dict[str, list[int]] = defaultdict(list)
        for doc_id, words in enumerate(entry_words):
            for word in words:
                word_entries[word].append(doc_id)
        df: Counter[str] = Counter()
        for gram, holders in self._gram_words.items():
            if len(holders) == 1:
                df[gram] = len(word_entries[holders[0]])
            else:
                df[gram] = len(set().union(*map(word_entries.__getitem__, holders)))
        return df

    def _entry_norms(self) -> list[float]:
        """An entry's vector is the sum of its words' n-gram vectors, each word counted
        sublinearly; its length leaves out the overlap between different words, which
        keeps the build linear in the vocabulary rather than in the text."""
        idfs = self._gram_idfs
        word_sq = {
            w: sum((n * idfs[g]) ** 2 for g, n in Counter(grams).items())
            for w, grams in self._gram_cache.items()
        }
        return [
            math.sqrt(sum(c**2 * word_sq.get(w, 0.0) for w, c in pairs))
            for pairs in self._entry_weights
        ]

    def _grams(self, word: str, store: bool = False) -> tuple[str, ...]:
        """Character n-grams of a word: they match word forms, compounds and typos.

        Only the FAQ's own words are kept, so arbitrary queries cannot grow the cache.
        """
        cached = self._gram_cache.get(word)
        if cached is None:
            if is_cjk(word):  # CJK runs are already matched by their character bigrams
                return ()
            padded = f" {word} "
            cached = tuple(
                padded[i : i + n]
                for n in range(self._ngram_min, self._ngram_max + 1)
                for i in range(len(padded) - n + 1)
            )
            if store:
                self._gram_cache[word] = cached
        return cached

    def scores(self, tokens: list[str], candidates: list[int]) -> dict[int, float]:
        """Cosine of TF-IDF character n-gram vectors for a few candidates.

        The query's unknown n-grams count in its length, so a message that shares little
        with the FAQ scores low everywhere rather than high on the little it shares.
        """
        q = Counter(chain.from_iterable(map(self._grams, tokens)))
        if not q:
            return {}
        idfs = self._gram_idfs
        idf_get = idfs.get
        unknown = self._gram_idf_unknown
        weights = {g: _sublinear(tf) * idf_get(g, unknown) for g, tf in q.items()}
        q_norm = math.sqrt(sum(w * w for w in weights.values()))
        shared = {g: w * idfs[g] for g, w in weights.items() if g in idfs}
        q_get = shared.get
        grams = self._gram_cache
        norms = self._gram_norms
        entry_weights = self._entry_weights
        # The query's dot product with each FAQ word. Most words of a candidate share no
        # n-gram with the query; when the words that do are fewer than the candidates'
        # words, work out just those up front and skip the rest, whose product is zero.
        gram_words = self._gram_words
        reach = sum(len(gram_words[g]) for g in shared)
        complete = reach <= sum(len(entry_weights[d]) for d in candidates)
        if complete:
            per_word = {
                w: sum(filter(None, map(q_get, grams[w])))
                for w in set().union(*map(gram_words.__getitem__, shared))
            }
        else:
            per_word = {}
        known = per_word.get
        out: dict[int, float] = {}
        for doc_id in candidates:
            norm = norms[doc_id]
            if not norm:
                continue
            score = 0.0
            for word, weight in entry_weights[doc_id]:
                s = known(word)
                if s is None:
                    if complete:
                        continue
                    s = per_word[word] = sum(filter(None, map(q_get, grams.get(word, ()))))
                if s:
                    score += weight * s
            out[doc_id] = score / (norm * q_norm)
        return out


def _smooth_idf(n_docs: int, df: int) -> float:
    return math.log((1.0 + n_docs) / (1.0 + df)) + 1.0


def _sublinear(tf: float) -> float:
    return 1.0 + math.log(tf) if tf > 1.0 else tf
