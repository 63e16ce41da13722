"""Default FAQ retriever: lexical, multilingual, fast enough to run on every message.

Two views of the FAQ are scored and blended:

* the whole entry (question, tags, examples and answer) as one document with per-field
  weights (BM25F), which rewards entries whose vocabulary covers the customer's words;
* each single phrasing (the question or one example) on its own, keeping only the best
  one per entry, because a customer message usually paraphrases exactly one of them and a
  close match there is stronger evidence than words scattered across a long answer.

Both scores are divided by what the query could score at most, so they mean "share of the
query's information that was matched" whatever the FAQ's size; the confidence is a
logistic function of that share for the top entry and of its lead over the runner-up.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, islice
from operator import itemgetter

from bot.knowledge.faq import FaqEntry, SearchResult
from bot.knowledge.text import Analyzer, is_cjk


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
    ngram_weight: float = 1.0  # blend weight of character n-gram matching
    ngram_min: int = 3
    ngram_max: int = 5
    ngram_candidates: int = 30  # entries re-scored by n-grams, best by words first
    # confidence = sigmoid(conf_top * top + conf_margin * (top - second) + conf_bias)
    conf_top: float = 8.0
    conf_margin: float = 8.0
    conf_bias: float = -5.0


DEFAULT_PARAMS = SearchParams()


class _Postings:
    """Inverted index with BM25 contributions precomputed, so a query only adds floats."""

    def __init__(self, n_docs: int) -> None:
        self.n_docs = n_docs
        self.lists: dict[str, tuple[list[int], list[float]]] = {}
        self.idf_unknown = _idf(n_docs, 0)

    def idf(self, term: str) -> float:
        found = self.lists.get(term)
        return _idf(self.n_docs, len(found[0])) if found else self.idf_unknown

    @classmethod
    def build(
        cls,
        docs: Sequence[Sequence[tuple[Counter[str], float, float]]],
        k1: float,
        b: float,
    ) -> _Postings:
        """``docs[i]`` lists (term counts, field weight, field-length ratio) per field."""
        index = cls(len(docs))
        raw: dict[str, dict[int, float]] = defaultdict(dict)
        for doc_id, fields in enumerate(docs):
            for counts, weight, length_ratio in fields:
                norm = weight / (1.0 - b + b * length_ratio)
                for term, tf in counts.items():
                    acc = raw[term]
                    acc[doc_id] = acc.get(doc_id, 0.0) + tf * norm
        for term, per_doc in raw.items():
            idf = _idf(len(docs), len(per_doc))
            ranked = sorted(per_doc.items(), key=itemgetter(1), reverse=True)
            index.lists[term] = (
                [doc_id for doc_id, _ in ranked],
                [idf * t / (k1 + t) for _, t in ranked],
            )
        return index

    def score(self, query: Counter[str], limit: int) -> tuple[dict[int, float], float]:
        """Scores per document, and the most any document could score for this query."""
        acc: dict[int, float] = defaultdict(float)
        best = 0.0
        for term, qtf in query.items():
            found = self.lists.get(term)
            if found is None:
                best += qtf * self.idf_unknown
                continue
            ids, weights = found
            best += qtf * _idf(self.n_docs, len(ids))
            for doc_id, w in islice(zip(ids, weights, strict=True), limit):
                acc[doc_id] += qtf * w
        return acc, best


def _by_score(item: tuple[int, float]) -> tuple[float, int]:
    return item[1], -item[0]  # ties go to the entry written first


def _idf(n_docs: int, df: int) -> float:
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def _field_lengths(per_doc: Iterable[Counter[str]]) -> list[int]:
    return [sum(c.values()) for c in per_doc]


class FaqIndex:
    """Searchable snapshot of a FAQ; build once per knowledge version, query many times."""

    def __init__(
        self,
        entries: Sequence[FaqEntry],
        *,
        language: str = "english",
        params: SearchParams = DEFAULT_PARAMS,
    ) -> None:
        self._entries = tuple(entries)
        self._params = params
        self._analyzer = Analyzer(language)
        p = params
        analyzer = self._analyzer
        shared_words: dict[str, str] = {}
        self._entry_words: list[tuple[str, ...]] = []

        def terms(text: str) -> list[str]:
            tokens = analyzer.words(text)
            words_seen.extend(shared_words.setdefault(w, w) for w in tokens if not is_cjk(w))
            return analyzer.terms_of(tokens)

        questions, tags, answers, example_lists = [], [], [], []
        for e in self._entries:
            words_seen: list[str] = []
            questions.append(Counter(terms(e.question)))
            tags.append(Counter(terms(" ".join(e.tags))))
            answers.append(Counter(terms(e.answer)))
            example_lists.append([Counter(terms(x)) for x in e.examples])
            self._entry_words.append(tuple(words_seen))
        examples = [sum(xs, Counter()) for xs in example_lists]

        fields = [
            (questions, p.question_weight),
            (tags, p.tags_weight),
            (examples, p.examples_weight),
            (answers, p.answer_weight),
        ]
        docs: list[list[tuple[Counter[str], float, float]]] = [[] for _ in self._entries]
        for per_doc, weight in fields:
            if weight <= 0:
                continue
            lengths = _field_lengths(per_doc)
            non_empty = [n for n in lengths if n]
            avg = sum(non_empty) / len(non_empty) if non_empty else 1.0
            for doc_id, (counts, n) in enumerate(zip(per_doc, lengths, strict=True)):
                if n:
                    docs[doc_id].append((counts, weight, n / avg))
        self._entry_index = _Postings.build(docs, p.k1, p.b)

        # One passage per phrasing: the question and each example.
        passages: list[list[tuple[Counter[str], float, float]]] = []
        self._passage_owner: list[int] = []
        phrasings = [
            (doc_id, counts)
            for doc_id in range(len(self._entries))
            for counts in (questions[doc_id], *example_lists[doc_id])
            if counts
        ]
        lengths = _field_lengths(c for _, c in phrasings)
        avg = sum(lengths) / len(lengths) if lengths else 1.0
        for (doc_id, counts), n in zip(phrasings, lengths, strict=True):
            passages.append([(counts, 1.0, n / avg)])
            self._passage_owner.append(doc_id)
        self._passage_index = _Postings.build(passages, p.k1, p.b)

        self._gram_cache: dict[str, tuple[str, ...]] = {}
        self._gram_df: Counter[str] = Counter()
        self._gram_lengths: list[int] = []
        if p.ngram_weight > 0:
            grams = self._grams
            for entry_words in self._entry_words:
                unique = set(entry_words)
                self._gram_df.update(set(chain.from_iterable(map(grams, unique))))
                self._gram_lengths.append(sum(len(grams(w)) for w in entry_words))
        self._gram_avg = (
            sum(self._gram_lengths) / len(self._gram_lengths) if self._gram_lengths else 1.0
        ) or 1.0

    def _grams(self, word: str) -> tuple[str, ...]:
        """Character n-grams of a word: they match word forms, compounds and typos."""
        cached = self._gram_cache.get(word)
        if cached is None:
            p = self._params
            padded = f" {word} "
            cached = tuple(
                padded[i : i + n]
                for n in range(p.ngram_min, p.ngram_max + 1)
                for i in range(len(padded) - n + 1)
            )
            if len(self._gram_cache) < 500_000:
                self._gram_cache[word] = cached
        return cached

    def _ngram_scores(self, tokens: list[str], candidates: list[int]) -> dict[int, float]:
        """BM25 over character n-grams for a few candidates, as a share of the query's best."""
        q_words = [w for w in tokens if not is_cjk(w)]
        q = Counter(chain.from_iterable(map(self._grams, q_words)))
        if not q:
            return {}
        n_docs = len(self._entries)
        df = self._gram_df
        idf = {g: _idf(n_docs, df.get(g, 0)) for g in q}
        best = sum(qtf * idf[g] for g, qtf in q.items())
        known = [(g, qtf * idf[g]) for g, qtf in q.items() if g in df]
        p = self._params
        k1, b = p.k1, p.b
        out: dict[int, float] = {}
        for doc_id in candidates:
            doc = Counter(chain.from_iterable(map(self._grams, self._entry_words[doc_id])))
            k = k1 * (1.0 - b + b * self._gram_lengths[doc_id] / self._gram_avg)
            score = 0.0
            for g, w in known:
                tf = doc.get(g)
                if tf:
                    score += w * tf / (tf + k)
            out[doc_id] = score / best
        return out

    def __len__(self) -> int:
        return len(self._entries)

    def search(self, query: str, top_k: int = 3) -> list[SearchResult]:
        if top_k <= 0 or not self._entries:
            return []
        tokens = self._analyzer.words(query)
        q = Counter(self._analyzer.terms_of(tokens))
        if not q:
            return []
        scores = self._scores(q, tokens)
        if not scores:
            return []
        ranked = heapq.nlargest(max(top_k, 2), scores.items(), key=_by_score)
        top = ranked[0][1]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        confidence = self._confidence(top, second)
        results = []
        for rank, (doc_id, score) in enumerate(ranked[:top_k]):
            conf = confidence if rank == 0 else self._confidence(score, top)
            results.append(SearchResult(self._entries[doc_id], score, conf))
        return results

    def _scores(self, q: Counter[str], tokens: list[str]) -> dict[int, float]:
        p = self._params
        entry_scores, entry_best = self._entry_index.score(q, p.max_postings)
        if entry_best <= 0 or not entry_scores:
            return {}
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
        if p.ngram_weight > 0:
            candidates = heapq.nlargest(p.ngram_candidates, combined, key=combined.__getitem__)
            w = p.ngram_weight / total
            for d, s in self._ngram_scores(tokens, candidates).items():
                combined[d] += w * s
        return combined

    def _confidence(self, score: float, rival: float) -> float:
        p = self._params
        z = p.conf_top * score + p.conf_margin * (score - rival) + p.conf_bias
        return 1.0 / (1.0 + math.exp(-z))
