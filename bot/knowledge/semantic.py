"""FAQ matching by meaning, fused with the word matcher: the retriever the bot runs.

Words find entries that share words with the message; meaning finds the rest
("my money back" for an entry about refunds, "我的包裹在哪里" for an English entry
about tracking). Each entry gets a vector of its whole text (question, examples
and answer, embedded as a passage), and with models that want it
(``phrasings``) one vector per way of asking, so a customer's message is also
compared with its nearest phrasing. Cosines are scaled to [0, 1] over the FAQ and
blended with the word scores by ``retrieval.semantic_weight``.

The word scores count only as much as the words are sure of their own best
match: a Chinese message against an English FAQ shares only stray letters with
it, and letting those decide would bury the entry its meaning points to.

Four rules keep meaning from ever making things worse than words alone:

* Entry vectors are cached in SQLite under a hash of model and text, so a
  restart or a reload embeds only entries that are new or changed.
* Embedding the FAQ runs in the background: a message that would wait long for
  it is matched by words instead, until the vectors are ready.
* Any failure (model or endpoint) falls back to the word results for that
  message, and preparing the FAQ is not retried for a while, so customers do
  not each wait through the same failure.
* Direct FAQ answers need a confidence fitted to the model's own similarities
  (``ConfidenceFit``); a model without one keeps the word-level confidence.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from array import array

import numpy

from bot.knowledge.confidence import ConfidenceFit
from bot.knowledge.embeddings import Embedder, EmbeddingCache, EmbeddingError
from bot.knowledge.faq import SearchResult
from bot.knowledge.faq_vectors import FaqVectors, embed_faq
from bot.knowledge.language import detect_language
from bot.knowledge.live import Knowledge

log = logging.getLogger(__name__)

LEXICAL_POOL = 50  # word candidates blended with the ones found by meaning
SEMANTIC_POOL = 20  # best entries by meaning alone that join the candidates
RECENT_WORD_SEARCHES = 256  # word matches kept for a message asked about twice
# The word scores count fully once their own best match is this sure of itself
# (bench/retrieval.py --tune-semantic chose it among 0.2, 0.5 and 1.0).
LEXICAL_TRUST = 0.5
# How much the question before counts beside a follow-up, read together by meaning
# (bench/retrieval.py --multilingual chose it among 0.4, 0.5, 0.6, 1.0 and 1.5).
CONTEXT_WEIGHT = 0.6
# From this word-level confidence, for a message in the FAQ's language with no word the
# FAQ lacks, meaning is not asked. Chosen by bench/retrieval.py --words-decide among 0.83,
# 0.9, 0.95 and 0.98 on the tuning half of the banking messages, as the lowest bar that
# moves neither top-3 nor the share of right direct answers by 0.1 points there: 8 % of
# those messages are not embedded (20 % with examples in the FAQ), top-3 84.72 -> 84.64 %
# and 93.13 -> 93.09 %. At 0.83 the right direct answers fell by 0.4 to 0.6 points.
WORDS_DECIDE = 0.95
RETRY_AFTER_SECONDS = 60.0  # after a failure to embed the FAQ, words only for this long
SLOW_EMBEDDING_SECONDS = 5.0  # embedding the FAQ took long enough to say when it is done


def _together(context: array, message: array) -> array:
    """A reading of two messages together: the unit vector along their weighted sum."""
    total = CONTEXT_WEIGHT * numpy.frombuffer(context, dtype=numpy.float32)
    total += numpy.frombuffer(message, dtype=numpy.float32)
    total /= max(float(numpy.linalg.norm(total)), 1e-12)
    return array("f", total.astype(numpy.float32).tobytes())


@dataclasses.dataclass
class _Reading:
    """A text's word matches, and what they tell once the FAQ's vectors are ready:
    (in another language than the FAQ's, clear enough for the words to decide alone)."""

    matches: list[SearchResult]
    told: tuple[bool, bool] | None = None


class SemanticSearch:
    """Blends word and meaning scores; held by the core as its retriever."""

    def __init__(
        self,
        client: Embedder,
        cache: EmbeddingCache,
        weight: float,
        patience: float | None = None,
        skip_clear: bool = False,
    ):
        """``patience``: how long a message waits, from the moment embedding began, for
        vectors still being embedded before it is matched by words; None waits until
        they are done, as tools that measure matching must.

        ``skip_clear``: a message in the FAQ's language that the words match with a
        confidence of at least ``WORDS_DECIDE``, and with no word the FAQ lacks, is matched
        by words alone and not embedded, as the bot does. Tools that fit the model leave
        it off, to see the model on every message."""
        self.client = client
        self.confidence_fit: ConfidenceFit | None = getattr(client, "confidence_fit", None)
        # A message in another language than the FAQ's meets its entries at lower cosines
        # with a different spread, so it is judged by a fit of its own where the model has one.
        self.cross_language_fit: ConfidenceFit | None = (
            getattr(client, "cross_language_fit", None) or self.confidence_fit
        )
        self.use_phrasings: bool = bool(getattr(client, "phrasings", False))
        self.cache = cache
        self.weight = weight
        self.patience = patience
        self.skip_clear = skip_clear
        self._recent_words: dict[tuple[str, str], _Reading] = {}
        self._prepared: FaqVectors | None = None
        self._lock = asyncio.Lock()
        self._failed_at: float | None = None
        self._embedding: asyncio.Task[None] | None = None
        self._embedding_version = ""
        self._embedding_since = 0.0

    async def aclose(self) -> None:
        if self._embedding is not None and not self._embedding.done():
            self._embedding.cancel()
            await asyncio.wait({self._embedding})
        await self.client.aclose()
        await self.cache.aclose()

    def embedding(self, knowledge: Knowledge) -> bool:
        """Whether this version's vectors are being embedded right now."""
        task = self._embedding
        return task is not None and not task.done() and self._embedding_version == knowledge.version

    def ready(self, knowledge: Knowledge) -> bool:
        """Whether every entry of this version has its vectors."""
        return self._prepared is not None and self._prepared.version == knowledge.version

    async def prepare(self, knowledge: Knowledge, wait: float | None = None) -> bool:
        """Embed this version's entries, waiting at most ``wait`` seconds from the moment
        embedding began (None: until it is done); False while they are not ready.

        Embedding runs as a task of its own, so a first start with thousands of new
        entries, which takes minutes, answers by words meanwhile instead of keeping
        every customer waiting. Vectors are kept as they come, so a restart meanwhile
        picks up where it stopped.
        """
        if self.ready(knowledge):
            return True
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER_SECONDS:
            return False
        task = self._embedding
        if task is None or task.done() or self._embedding_version != knowledge.version:
            # A version still embedding finishes first: the next one reuses its vectors.
            task = self._embedding = asyncio.create_task(self._embed(knowledge))
            self._embedding_version = knowledge.version
            self._embedding_since = time.monotonic()
        if wait is None:
            await asyncio.wait({task})
        elif (left := self._embedding_since + wait - time.monotonic()) > 0:
            await asyncio.wait({task}, timeout=left)
        return self.ready(knowledge)

    async def _embed(self, knowledge: Knowledge) -> None:
        async with self._lock:
            if self.ready(knowledge):
                return
            started = time.monotonic()
            try:
                prepared = await embed_faq(
                    self.client, self.cache, knowledge, self._prepared, self.use_phrasings
                )
            except Exception as error:
                self._failed_at = time.monotonic()
                log.warning(
                    "matching by words only for %.0f s: could not embed the FAQ: %s",
                    RETRY_AFTER_SECONDS,
                    error,
                )
                return
            self._prepared, self._failed_at = prepared, None
            if (took := time.monotonic() - started) >= SLOW_EMBEDDING_SECONDS:
                log.info("the FAQ's vectors are ready after %.0f s: matching by meaning", took)

    async def search(
        self,
        knowledge: Knowledge,
        query: str,
        top_k: int,
        context: str | None = None,
        in_conversation: bool = False,
    ) -> list[SearchResult]:
        """``context``, the customer's question before, is read together with ``query``: by
        words as one text, by meaning as the weighted sum of the two messages' vectors,
        which the model has already computed for each of them.

        ``in_conversation``: a question came before, so even ``query`` read alone is a
        follow-up candidate, and its meaning is always asked (``skip_clear`` is for a
        first message): "and how fast is it?" shares every word with the FAQ, and its
        words alone leave out the entry the conversation is about."""
        text = f"{context}\n{query}" if context else query
        reading = self._by_words(knowledge, text, top_k)
        lexical = reading.matches
        if self.weight <= 0 or not await self.prepare(knowledge, self.patience):
            return lexical[:top_k]
        foreign, clear = self._told(knowledge, text, reading)
        # The bar was measured on single messages, not on follow-ups (``in_conversation``).
        if clear and context is None and not in_conversation:
            return lexical[:top_k]
        try:
            vectors = await self.client.embed([context, query] if context else [query], query=True)
        except EmbeddingError as error:
            log.warning("matching by words only for one message: %s", error)
            return lexical[:top_k]
        except Exception:
            log.exception("matching by words only for one message")
            return lexical[:top_k]
        prepared = self._prepared
        if prepared is None or prepared.version != knowledge.version:
            return lexical[:top_k]  # a reload raced this message; the next one catches up
        if any(len(v) != prepared.passages.shape[1] for v in vectors):
            return lexical[:top_k]
        query_vector = vectors[0] if len(vectors) == 1 else _together(*vectors)
        return self._fuse(knowledge, prepared, lexical, query_vector, top_k, foreign)

    def words_decide(self, knowledge: Knowledge, text: str) -> bool:
        """Whether the words alone answer ``text`` straight from the FAQ, so that nothing
        else needs its meaning either (small talk is never so clear an FAQ question)."""
        if self.weight <= 0 or not self.ready(knowledge):
            return False
        return self._told(knowledge, text, self._by_words(knowledge, text, 1))[1]

    def _by_words(self, knowledge: Knowledge, text: str, top_k: int) -> _Reading:
        """The word matches, kept a moment with what they tell: the core asks
        ``words_decide`` and then ``search`` about the same message, and a large FAQ
        takes milliseconds to search."""
        if top_k > LEXICAL_POOL:
            return _Reading(knowledge.search(text, top_k))
        key = (knowledge.version, text)
        reading = self._recent_words.get(key)
        if reading is None:
            if len(self._recent_words) >= RECENT_WORD_SEARCHES:
                self._recent_words.clear()
            reading = self._recent_words[key] = _Reading(knowledge.search(text, LEXICAL_POOL))
        return reading

    def _told(self, knowledge: Knowledge, text: str, reading: _Reading) -> tuple[bool, bool]:
        """Whether the message is in another language than the FAQ's, and whether its
        words decide alone (``skip_clear``); told once per reading, with the FAQ's
        vectors ready, since the FAQ's language comes with them."""
        if reading.told is None:
            assert self._prepared is not None
            foreign = is_foreign(text, self._prepared.language)
            lexical = reading.matches
            clear = (
                self.skip_clear
                and not foreign
                and bool(lexical)
                and lexical[0].confidence >= WORDS_DECIDE
                and knowledge.index.knows_every_word(text)
            )
            reading.told = (foreign, clear)
        return reading.told

    def fit_for(self, foreign: bool) -> ConfidenceFit | None:
        """The confidence fit that judges a message in (or not in) the FAQ's language."""
        return self.cross_language_fit if foreign else self.confidence_fit

    @staticmethod
    def _trust(knowledge: Knowledge, lexical: list[SearchResult], foreign: bool) -> float:
        """How much the word scores count: 0 when their best match is no better than a
        match that shares nothing with the message, fully from ``LEXICAL_TRUST`` up.

        Nothing for a message in another language than the FAQ's: what it shares with
        the FAQ's words is stray letters and look-alike stems ("Как отменить заказ?"
        against English entries), and letting them into the ranking buries the entry
        its meaning points to (bench/retrieval.py --multilingual, first-ranked entry
        right for 80 % of single messages with them, 85 % without)."""
        if not lexical or foreign:
            return 0.0
        floor = knowledge.index.baseline_confidence
        return min(1.0, max(0.0, (lexical[0].confidence - floor) / (LEXICAL_TRUST - floor)))

    def _fuse(
        self,
        knowledge: Knowledge,
        prepared: FaqVectors,
        lexical: list[SearchResult],
        query_vector: array,
        top_k: int,
        foreign: bool,
    ) -> list[SearchResult]:
        entries = knowledge.faq.entries
        scores, agreed = prepared.similarities(query_vector)
        valid = numpy.isfinite(scores)
        if not valid.any():
            return lexical[:top_k]
        by_position = {prepared.positions[r.id]: r for r in lexical if r.id in prepared.positions}
        pool = min(SEMANTIC_POOL, int(valid.sum()))
        best = numpy.argpartition(-scores, pool - 1)[:pool].tolist()
        candidates = list(dict.fromkeys([*by_position, *best]))

        low, high = float(scores[valid].min()), float(scores[valid].max())
        spread = high - low
        top_lexical = max((r.score for r in lexical), default=0.0)
        trust = self._trust(knowledge, lexical, foreign)
        fit = self.fit_for(foreign)
        fused: list[tuple[float, int]] = []
        for position in candidates:
            hit = by_position.get(position)
            lex = hit.score / top_lexical if hit is not None and top_lexical > 0 else 0.0
            own = float(scores[position]) if valid[position] else low
            sem = (own - low) / spread if spread > 0 else 0.0
            fused.append(((1 - self.weight) * trust * lex + self.weight * sem, position))
        fused.sort(key=lambda item: (-item[0], item[1]))

        ranked = numpy.argsort(-numpy.where(valid, scores, -numpy.inf))[:2]
        best_position = int(ranked[0])
        best_score = float(scores[best_position])
        runner_up = float(scores[ranked[1]]) if len(ranked) > 1 else low
        results = []
        for score, position in fused[:top_k]:
            hit = by_position.get(position)
            confidence = hit.confidence if hit is not None else 0.0
            if fit is not None:
                own = float(scores[position]) if valid[position] else low
                rival = runner_up if position == best_position else best_score
                judged = fit(confidence, own, own - rival, float(position == agreed))
                # Never less sure than the words alone: with a lone entry, or two entries
                # close in meaning, the lead says nothing, but the words can still be sure.
                # Words shared with an FAQ in another language are no such evidence
                # ("cancellare il mio account" shares "cancel" with cancelling an order).
                confidence = judged if foreign else max(confidence, judged)
            results.append(SearchResult(entries[position], score, confidence))
        return results


def is_foreign(text: str, faq_language: str) -> bool:
    """Whether a message is told to be in another language than the FAQ's."""
    if not faq_language:
        return False
    language = detect_language(text)
    return language is not None and language != faq_language
