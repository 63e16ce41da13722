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

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.knowledge.faq import FaqEntry, SearchResult
from bot.knowledge.text import Analyzer


@dataclass(frozen=True)
class SearchParams:
    """General ranking parameters; none depends on a particular FAQ's vocabulary."""

    k1: float = 2.0
    b: float = 0.75
    question_weight: float = 1.0
    tags_weight: float = 1.0
    examples_weight: float = 1.0
    answer_weight: float = 1.0
    passage_weight: float = 0.3  # blend weight of the best single phrasing
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
            ids = list(per_doc)
            index.lists[term] = (ids, [idf * t / (k1 + t) for t in per_doc.values()])
        return index

    def score(self, query: Counter[str]) -> tuple[dict[int, float], float]:
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
            if qtf == 1:
                for doc_id, w in zip(ids, weights, strict=True):
                    acc[doc_id] += w
            else:
                for doc_id, w in zip(ids, weights, strict=True):
                    acc[doc_id] += qtf * w
        return acc, best


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
        terms = self._analyzer.terms

        questions = [Counter(terms(e.question)) for e in self._entries]
        tags = [Counter(terms(" ".join(e.tags))) for e in self._entries]
        answers = [Counter(terms(e.answer)) for e in self._entries]
        example_lists = [[Counter(terms(x)) for x in e.examples] for e in self._entries]
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

    def __len__(self) -> int:
        return len(self._entries)

    def search(self, query: str, top_k: int = 3) -> list[SearchResult]:
        if top_k <= 0 or not self._entries:
            return []
        q = Counter(self._analyzer.terms(query))
        if not q:
            return []
        scores = self._scores(q)
        if not scores:
            return []
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        top = ranked[0][1]
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        confidence = self._confidence(top, second)
        results = []
        for rank, (doc_id, score) in enumerate(ranked[:top_k]):
            conf = confidence if rank == 0 else self._confidence(score, top)
            results.append(SearchResult(self._entries[doc_id], score, conf))
        return results

    def _scores(self, q: Counter[str]) -> dict[int, float]:
        p = self._params
        entry_scores, entry_best = self._entry_index.score(q)
        combined: dict[int, float] = {}
        if entry_best > 0:
            inv = 1.0 / entry_best
            combined = {d: s * inv for d, s in entry_scores.items()}
        if p.passage_weight > 0:
            passage_scores, passage_best = self._passage_index.score(q)
            if passage_best > 0:
                best_per_entry: dict[int, float] = {}
                owner = self._passage_owner
                for pid, s in passage_scores.items():
                    d = owner[pid]
                    if s > best_per_entry.get(d, 0.0):
                        best_per_entry[d] = s
                w = p.passage_weight / passage_best
                for d, s in best_per_entry.items():
                    combined[d] = combined.get(d, 0.0) + w * s
        total = 1.0 + p.passage_weight
        return {d: s / total for d, s in combined.items() if s > 0}

    def _confidence(self, score: float, rival: float) -> float:
        p = self._params
        z = p.conf_top * score + p.conf_margin * (score - rival) + p.conf_bias
        return 1.0 / (1.0 + math.exp(-z))
