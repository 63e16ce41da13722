"""Recognising a request for a person by meaning, in any wording and language.

The phrase lists of ``bot.handoff`` stay the floor: exact, instant and free. They
miss what nobody listed ("get me an agent", "能不能让人工来处理一下"). This asks
the bundled sentence model instead: a message is a request when its nearest
asking example (``person_request_examples.ASKING``) is close, and clearly closer
than its nearest look-alike (``NOT_ASKING``: "human error", "agent of change", a
person named in an order). Requiring both keeps false handoffs away from
questions that merely mention people.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy

from bot.knowledge.embeddings import EmbeddingCache
from bot.knowledge.sentence_model import SentenceModel, embed_examples
from bot.person_request_examples import ASKING, NOT_ASKING

log = logging.getLogger(__name__)

# Chosen on our own development cases (python bench/retrieval.py --handoff), which
# share no sentence with the examples or with the tests: there F1 0.98 with phrases,
# no false handoff. The lead matters most: similarities of this model are close
# together, and a look-alike is often as near an asking example as a request is.
MIN_SIMILARITY = 0.85
MIN_LEAD = 0.025
MAX_CHARS = 300  # a long message is a question or a story, not a request to hand over


class PersonRequests:
    """Asks the model whether a message requests a person; never raises.

    The examples' vectors are made once, at start (``warm_up``), and kept in the FAQ's
    vector cache when there is one, so that a restart does not embed them again.
    """

    def __init__(self, model: SentenceModel | None, cache: EmbeddingCache | None = None):
        self.model = model
        self.cache = cache
        self._examples: tuple[Any, Any] | None = None
        self._lock = asyncio.Lock()

    async def warm_up(self) -> None:
        if self.model is None:
            return
        try:
            await self._example_vectors()
        except Exception:
            log.exception("could not prepare the examples of requests for a person")

    async def asks_for_person(self, text: str) -> bool:
        text = text.strip()
        # A slash command for another bot ("/start@otherbot") is not a sentence.
        if self.model is None or not text or text.startswith("/") or len(text) > MAX_CHARS:
            return False
        try:
            asking, not_asking = await self._example_vectors()
            (vector,) = await self.model.embed([text], query=True)
        except Exception:
            log.exception("could not check a message for a request for a person")
            return False
        query = numpy.frombuffer(vector, dtype=numpy.float32)
        nearest_asking = float((asking @ query).max())
        nearest_other = float((not_asking @ query).max())
        return nearest_asking >= MIN_SIMILARITY and nearest_asking - nearest_other >= MIN_LEAD

    async def _example_vectors(self) -> tuple[Any, Any]:
        async with self._lock:
            if self._examples is None:
                asking = await embed_examples(self.model, self.cache, list(ASKING))
                others = await embed_examples(self.model, self.cache, list(NOT_ASKING))
                self._examples = (_rows(asking), _rows(others))
        return self._examples


def _rows(vectors: list) -> Any:
    return numpy.stack([numpy.frombuffer(v, dtype=numpy.float32) for v in vectors])
