"""BM25F postings for the FAQ search's word views, built once so a query only adds floats.

The whole-entry view and the single-phrasing view of ``bot.knowledge.search`` differ only
in what counts as a document; both rank by the same BM25F formula, kept here once.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from operator import itemgetter

# One field of a document: its term counts, its weight, and its length over the average.
Field = tuple[Counter[str], float, float]


def weighted_fields(
    fields: Sequence[tuple[Sequence[Counter[str]], float]], n_docs: int
) -> list[list[Field]]:
    """Documents of several weighted fields, each field's length against its average.

    ``fields`` holds, per field, every document's term counts and the field's weight;
    a field of weight 0 is left out, and so is an empty field of a document.
    """
    docs: list[list[Field]] = [[] for _ in range(n_docs)]
    for per_doc, weight in fields:
        if weight <= 0:
            continue
        lengths = _lengths(per_doc)
        non_empty = [n for n in lengths if n]
        avg = sum(non_empty) / len(non_empty) if non_empty else 1.0
        for doc_id, (counts, n) in enumerate(zip(per_doc, lengths, strict=True)):
            if n:
                docs[doc_id].append((counts, weight, n / avg))
    return docs


def single_fields(per_doc: Sequence[Counter[str]]) -> list[list[Field]]:
    """Documents of one field each, of weight 1, each length against the average."""
    lengths = _lengths(per_doc)
    avg = sum(lengths) / len(lengths) if lengths else 1.0
    return [[(counts, 1.0, n / avg)] for counts, n in zip(per_doc, lengths, strict=True)]


def _lengths(per_doc: Iterable[Counter[str]]) -> list[int]:
    return [sum(c.values()) for c in per_doc]


def _idf(n_docs: int, df: int) -> float:
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


class Postings:
    """Inverted index with BM25 contributions precomputed, so a query only adds floats."""

    def __init__(self, n_docs: int) -> None:
        self.n_docs = n_docs
        # Per term: documents best first, their BM25 contributions, and the term's idf.
        self.lists: dict[str, tuple[list[int], list[float], float]] = {}
        self.idf_unknown = _idf(n_docs, 0)

    def state(self) -> tuple[int, dict[str, tuple[list[int], list[float], float]]]:
        """Plain values to keep on disk (``bot.knowledge.word_index_cache``)."""
        return self.n_docs, self.lists

    @classmethod
    def from_state(
        cls, state: tuple[int, dict[str, tuple[list[int], list[float], float]]]
    ) -> Postings:
        n_docs, lists = state
        index = cls(n_docs)
        index.lists = lists
        return index

    def idf(self, term: str) -> float:
        found = self.lists.get(term)
        return found[2] if found else self.idf_unknown

    @classmethod
    def build(
        cls,
        docs: Sequence[Sequence[Field]],
        k1: float,
        b: float,
        max_postings: int,
    ) -> Postings:
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
            term_idf = _idf(len(docs), len(per_doc))
            if len(per_doc) > max_postings:  # only long lists are ever cut short
                ranked = sorted(per_doc.items(), key=itemgetter(1), reverse=True)
                per_doc = dict(ranked)
            weights = [term_idf * t / (k1 + t) for t in per_doc.values()]
            index.lists[term] = (list(per_doc), weights, term_idf)
        return index

    def score(self, query: Counter[str], limit: int) -> tuple[dict[int, float], float]:
        """Scores per document, and the most any document could score for this query."""
        acc: dict[int, float] = {}
        get = acc.get
        lookup = self.lists.get
        best = 0.0
        for term, qtf in query.items():
            found = lookup(term)
            if found is None:
                best += qtf * self.idf_unknown
                continue
            ids, weights, term_idf = found
            best += qtf * term_idf
            if len(ids) > limit:
                ids, weights = ids[:limit], weights[:limit]
            if qtf != 1:  # most query words occur once, and 1 * w is w
                weights = [qtf * w for w in weights]
            if acc:
                for doc_id, w in zip(ids, weights, strict=True):
                    acc[doc_id] = get(doc_id, 0.0) + w
            else:  # the first term: 0.0 + w is w, so its postings are the scores
                acc.update(zip(ids, weights, strict=True))
        return acc, best
