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
"""

from __future__ import annotations

import gc
import heapq
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter

from bot.knowledge.faq import FaqEntry, SearchResult
from bot.knowledge.stopwords import STOPWORDS
from bot.knowledge.text import Analyzer, is_cjk, surface_words


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


class _Postings:
    """Inverted index with BM25 contributions precomputed, so a query only adds floats."""

    def __init__(self, n_docs: int) -> None:
        self.n_docs = n_docs
        # Per term: documents best first, their BM25 contributions, and the term's idf.
        self.lists: dict[str, tuple[list[int], list[float], float]] = {}
        self.idf_unknown = _idf(n_docs, 0)

    def idf(self, term: str) -> float:
        found = self.lists.get(term)
        return found[2] if found else self.idf_unknown

    @classmethod
    def build(
        cls,
        docs: Sequence[Sequence[tuple[Counter[str], float, float]]],
        k1: float,
        b: float,
        max_postings: int,
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
            if len(per_doc) > max_postings:  # only long lists are ever cut short
                ranked = sorted(per_doc.items(), key=itemgetter(1), reverse=True)
                per_doc = dict(ranked)
            weights = [idf * t / (k1 + t) for t in per_doc.values()]
            index.lists[term] = (list(per_doc), weights, idf)
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
            ids, weights, idf = found
            best += qtf * idf
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


def _by_score(item: tuple[int, float]) -> tuple[float, int]:
    return item[1], -item[0]  # ties go to the entry written first


def _idf(n_docs: int, df: int) -> float:
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def _smooth_idf(n_docs: int, df: int) -> float:
    return math.log((1.0 + n_docs) / (1.0 + df)) + 1.0


def _sublinear(tf: float) -> float:
    return 1.0 + math.log(tf) if tf > 1.0 else tf


def _content(words: list[str]) -> list[str]:
    return [w for w in words if w not in STOPWORDS]


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
        analyzer = self._analyzer
        # Surface words of each entry, function words included, weighted by field, for
        # the character n-gram vectors: "top up" or "not working" read better whole.
        self._entry_words: list[dict[str, float]] = []
        gram_fields = (
            p.ngram_question_weight,
            p.ngram_tags_weight,
            p.ngram_examples_weight,
            p.ngram_answer_weight,
        )
        questions, tags, answers, examples, example_lists = [], [], [], [], []
        terms_of = analyzer.terms_of
        for e in self._entries:
            # Each text is split once: the n-gram view keeps function words, the word
            # views drop them.
            q_surface = surface_words(e.question)
            t_surface = surface_words(" ".join(e.tags))
            a_surface = surface_words(e.answer)
            x_surface = [surface_words(x) for x in e.examples]
            surface: dict[str, float] = {}
            for field_words, weight in zip(
                (q_surface, t_surface, chain.from_iterable(x_surface), a_surface),
                gram_fields,
                strict=True,
            ):
                if weight > 0:
                    for word in field_words:
                        surface[word] = surface.get(word, 0.0) + weight
            self._entry_words.append(surface)
            questions.append(Counter(terms_of(_content(q_surface))))
            tags.append(Counter(terms_of(_content(t_surface))))
            answers.append(Counter(terms_of(_content(a_surface))))
            per_example = [Counter(terms_of(_content(w))) for w in x_surface]
            example_lists.append(per_example)
            all_examples: Counter[str] = Counter()
            for counts in per_example:
                all_examples.update(counts)
            examples.append(all_examples)

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
        self._entry_index = _Postings.build(docs, p.k1, p.b, p.max_postings)

        # One passage per phrasing: the question, each example, and the tags together,
        # which name the topic in a customer's short words ("refund", "track order") and
        # would otherwise drown in the long answer of the whole-entry view.
        passages: list[list[tuple[Counter[str], float, float]]] = []
        self._passage_owner: list[int] = []
        phrasings = [
            (doc_id, counts)
            for doc_id in range(len(self._entries))
            for counts in (questions[doc_id], *example_lists[doc_id], tags[doc_id])
            if counts
        ]
        lengths = _field_lengths(c for _, c in phrasings)
        avg = sum(lengths) / len(lengths) if lengths else 1.0
        for (doc_id, counts), n in zip(phrasings, lengths, strict=True):
            passages.append([(counts, 1.0, n / avg)])
            self._passage_owner.append(doc_id)
        self._passage_index = _Postings.build(passages, p.k1, p.b, p.max_postings)

        self._gram_cache: dict[str, tuple[str, ...]] = {}
        self._gram_df: Counter[str] = Counter()
        self._gram_norms: list[float] = []
        self._entry_weights: list[tuple[tuple[str, float], ...]] = []
        self._gram_idfs: dict[str, float] = {}
        self._gram_words: dict[str, tuple[str, ...]] = {}
        self._gram_idf_unknown = _smooth_idf(len(self._entries), 0)
        if p.ngram_weight > 0:
            for word in set().union(*self._entry_words):
                self._grams(word, store=True)
            # Which FAQ words hold each n-gram, so that a query can tell the words it
            # shares nothing with, whose dot product is zero, without working it out.
            gram_words: dict[str, list[str]] = defaultdict(list)
            for word, word_grams in self._gram_cache.items():
                for gram in dict.fromkeys(word_grams):
                    gram_words[gram].append(word)
            self._gram_words = {g: tuple(ws) for g, ws in gram_words.items()}
            # An n-gram's document frequency is the number of entries holding any of
            # its words: one word's entry count, or the size of a union for n-grams
            # that several words share. Counting per entry instead would touch every
            # n-gram of every word of every entry, many times more.
            word_entries: dict[str, list[int]] = defaultdict(list)
            for doc_id, entry_words in enumerate(self._entry_words):
                for word in entry_words:
                    word_entries[word].append(doc_id)
            df = self._gram_df
            for gram, holders in self._gram_words.items():
                if len(holders) == 1:
                    df[gram] = len(word_entries[holders[0]])
                else:
                    df[gram] = len(set().union(*map(word_entries.__getitem__, holders)))
            # An entry's vector is the sum of its words' n-gram vectors, each word counted
            # sublinearly; its length leaves out the overlap between different words,
            # which keeps the build linear in the vocabulary rather than in the text.
            # The idf of every FAQ n-gram, worked out once rather than twice per query
            # n-gram; n-grams the FAQ lacks all share the idf of a document frequency of 0.
            n_entries = len(self._entries)
            self._gram_idfs = {g: _smooth_idf(n_entries, df) for g, df in self._gram_df.items()}
            idf = self._gram_idf
            word_sq = {
                w: sum((n * idf(g)) ** 2 for g, n in Counter(grams).items())
                for w, grams in self._gram_cache.items()
            }
            # Each entry's words with their sublinear weights, worked out once here
            # rather than for every candidate of every query.
            self._entry_weights = [
                tuple((w, _sublinear(c)) for w, c in ew.items()) for ew in self._entry_words
            ]
            self._gram_norms = [
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
            p = self._params
            padded = f" {word} "
            cached = tuple(
                padded[i : i + n]
                for n in range(p.ngram_min, p.ngram_max + 1)
                for i in range(len(padded) - n + 1)
            )
            if store:
                self._gram_cache[word] = cached
        return cached

    def _gram_idf(self, gram: str) -> float:
        return _smooth_idf(len(self._entries), self._gram_df.get(gram, 0))

    def _ngram_scores(self, tokens: list[str], candidates: list[int]) -> dict[int, float]:
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

    def __len__(self) -> int:
        return len(self._entries)

    def search(self, query: str, top_k: int = 3) -> list[SearchResult]:
        if top_k <= 0 or not self._entries:
            return []
        surface = surface_words(query)
        tokens = [w for w in surface if w not in STOPWORDS]
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
        if p.ngram_weight > 0:
            candidates = heapq.nlargest(p.ngram_candidates, combined, key=combined.__getitem__)
            # The candidates come best first, and n-grams only ever add to a score.
            floor = combined[candidates[-1]] if candidates else 0.0
            w = p.ngram_weight / total
            for d, s in self._ngram_scores(tokens, candidates).items():
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
