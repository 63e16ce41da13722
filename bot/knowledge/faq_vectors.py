"""The FAQ's vectors for one knowledge version, as matrices scored in one product each.

Entry texts are embedded through the SQLite cache, so a restart or a reload embeds only
entries that are new or changed; the previous version's vectors are reused first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from array import array
from collections.abc import Sequence
from typing import Any

import numpy

from bot.knowledge.embeddings import Embedder, EmbeddingCache, entry_text
from bot.knowledge.faq import FaqEntry
from bot.knowledge.language import main_language
from bot.knowledge.language import warm_up as language_warm_up
from bot.knowledge.live import Knowledge

log = logging.getLogger(__name__)

TRANSLATION_CHARS = 160  # of a translated answer, embedded beside the entry


@dataclasses.dataclass
class FaqVectors:
    """One knowledge version's vectors, as matrices scored in one product each."""

    version: str
    keys: list[str]  # every cache key the version uses, for pruning
    positions: dict[str, int]  # entry id -> position in knowledge.faq.entries
    passages: Any  # (entries x dims), zero rows where an entry has no vector
    has_passage: Any  # (entries,) bool
    phrasings: Any = None  # (phrasings x dims), or None when the model has none
    owners: Any = None  # (phrasings,) entry position of each phrasing row
    phrase_keys: list[str] = dataclasses.field(default_factory=list)  # cache key of each row
    # The entries' answers in other languages (``answers:``), as passages of their own,
    # so a message in one of those languages meets its entry in its own language.
    translations: Any = None
    translation_owners: Any = None
    translation_keys: list[str] = dataclasses.field(default_factory=list)
    language: str = ""  # the language most questions are written in

    def similarities(self, query_vector: array) -> tuple[Any, int | None]:
        """Each entry's similarity to the message (-inf where an entry has no vector), and
        the entry both readings put first, by its text and by its nearest way of asking,
        when they agree (None when they differ, or the model has no phrasings)."""
        query = numpy.frombuffer(query_vector, dtype=numpy.float32)
        scores = self.passages @ query
        if self.translations is not None and len(self.translation_owners):
            numpy.maximum.at(scores, self.translation_owners, self.translations @ query)
        agreed = None
        if self.phrasings is not None and len(self.owners):
            nearest = numpy.full(len(scores), -numpy.inf, dtype=numpy.float32)
            numpy.maximum.at(nearest, self.owners, self.phrasings @ query)
            by_text = int(numpy.argmax(numpy.where(self.has_passage, scores, -numpy.inf)))
            if numpy.isfinite(nearest).any() and int(numpy.argmax(nearest)) == by_text:
                agreed = by_text
            scores = numpy.where(numpy.isfinite(nearest), (scores + nearest) / 2, scores)
        return numpy.where(self.has_passage, scores, -numpy.inf), agreed

    def known_vectors(self) -> dict[str, array]:
        """Vectors of the previous version: a reload usually changes a few entries."""
        known = {
            key: array("f", row.tobytes())
            for key, row, ok in zip(self.keys, self.passages, self.has_passage, strict=False)
            if ok
        }
        for keys, rows in (
            (self.phrase_keys, self.phrasings),
            (self.translation_keys, self.translations),
        ):
            if rows is not None:
                for key, row in zip(keys, rows, strict=True):
                    known[key] = array("f", row.tobytes())
        return known


def _phrasings(entry: FaqEntry) -> list[str]:
    """The ways of asking for an entry: its question, examples, and the question in the
    other languages it is given in (``questions:``)."""
    return list(dict.fromkeys([entry.question, *entry.examples, *entry.questions.values()]))


def _translation_text(question: str, answer: str) -> str:
    """An answer in another language, cut to its opening words.

    The opening says what the answer is about; the rest costs the model time in
    proportion to its length and blurs the match (bench/retrieval.py --multilingual
    on the shipped FAQ: cut at 160 characters, top-3 94.8 % and follow-ups 90.5 %,
    against 92.7 % and 85.7 % whole, in half the embedding time).
    """
    if len(answer) > TRANSLATION_CHARS:
        opening = answer[:TRANSLATION_CHARS]
        answer = opening.rsplit(" ", 1)[0] if " " in opening else opening
    return f"{question}\n{answer}"


async def embed_faq(
    client: Embedder,
    cache: EmbeddingCache,
    knowledge: Knowledge,
    previous: FaqVectors | None,
    use_phrasings: bool,
) -> FaqVectors:
    """Every entry's vectors for this version, embedding only texts not seen before."""
    entries = knowledge.faq.entries
    known: dict[str, array] = {}
    if previous is not None:
        known.update(previous.known_vectors())
    passage_keys = await cache.fill(client, [entry_text(e) for e in entries], False, known)
    phrase_keys: list[str] = []
    owners: list[int] = []
    if use_phrasings:
        texts = []
        for position, entry in enumerate(entries):
            for text in _phrasings(entry):
                texts.append(text)
                owners.append(position)
        phrase_keys = await cache.fill(client, texts, True, known)
    translated: list[str] = []
    translation_owners: list[int] = []
    for position, entry in enumerate(entries if use_phrasings else ()):
        for text in entry.answers.values():
            translated.append(_translation_text(entry.question, text))
            translation_owners.append(position)
    translation_keys = await cache.fill(client, translated, False, known) if translated else []
    keys = passage_keys + phrase_keys + translation_keys
    pruned = await cache.prune(keys)
    if pruned:
        log.info("removed %d cached vectors no entry has used for a while", pruned)
    dims = next((len(v) for v in known.values()), 0)
    await asyncio.to_thread(language_warm_up)  # the FAQ's language must be told for sure
    passages, has_passage = _matrix([known.get(k) for k in passage_keys], dims)
    prepared = FaqVectors(
        knowledge.version,
        keys,
        {entry.id: i for i, entry in enumerate(entries)},
        passages,
        has_passage,
        language=main_language(entry.question for entry in entries),
    )
    if phrase_keys:
        matrix, present = _matrix([known.get(k) for k in phrase_keys], dims)
        prepared.phrasings = matrix[present]
        prepared.owners = numpy.asarray(owners, dtype=numpy.int64)[present]
        prepared.phrase_keys = [k for k, ok in zip(phrase_keys, present, strict=True) if ok]
    if translation_keys:
        matrix, present = _matrix([known.get(k) for k in translation_keys], dims)
        prepared.translations = matrix[present]
        prepared.translation_owners = numpy.asarray(translation_owners, dtype=numpy.int64)[present]
        prepared.translation_keys = [
            k for k, ok in zip(translation_keys, present, strict=True) if ok
        ]
    return prepared


def _matrix(vectors: Sequence[array | None], dims: int) -> tuple[Any, Any]:
    matrix = numpy.zeros((len(vectors), dims), dtype=numpy.float32)
    present = numpy.zeros(len(vectors), dtype=bool)
    for row, vector in enumerate(vectors):
        if vector is not None and len(vector) == dims:
            matrix[row] = numpy.frombuffer(vector, dtype=numpy.float32)
            present[row] = True
    return matrix, present
