"""Optional meaning-based FAQ matching with the provider's ``/embeddings`` endpoint.

The lexical index finds entries that share words with the message; customers
often share none ("my money back" for an entry about refunds). With
``retrieval.semantic: true`` each FAQ entry and each customer message is turned
into a vector by the configured embedding model, and the cosine similarities
are blended with the lexical scores (``retrieval.semantic_weight``).

Three rules keep it from ever making things worse than the lexical retriever:

* Entry vectors are cached in SQLite under a hash of model and text, so a
  restart or a reload embeds only entries that are new or changed: a large
  FAQ is paid for once, not on every deploy.
* Any failure (endpoint down, HTTP error, odd response) falls back to the
  lexical results for that message, and preparing the FAQ is not retried for
  a while, so customers do not each wait through the same failure.
* The blended results keep the lexical confidence, so direct FAQ answers still
  need the same word-level evidence as without embeddings; unless the model
  comes with a confidence fitted to its own cosines (``ConfidenceFit``, the local
  model does), which then also counts how clearly the entry leads by meaning.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import heapq
import logging
import math
import operator
import sys
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bot.knowledge.confidence import ConfidenceFit
from bot.knowledge.faq import FaqEntry, SearchResult
from bot.knowledge.live import Knowledge
from bot.store.db import Database, utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 96  # inputs per /embeddings request; providers accept far more, but smaller fails less
LEXICAL_POOL = 50  # lexical candidates blended with the semantic ones
SEMANTIC_POOL = 20  # best entries by meaning alone that join the candidates
# Scoring every entry is a dot product per entry in pure Python; above this many
# multiplications per message only the lexical candidates are re-scored.
FULL_SCAN_BUDGET = 3_000_000
PRUNE_AFTER_DAYS = 30.0  # unused cached vectors are kept this long, then deleted
RETRY_AFTER_SECONDS = 60.0  # after a failure to embed the FAQ, lexical only for this long


class EmbeddingError(Exception):
    """The embeddings endpoint gave no usable vectors."""


class EmbeddingClient:
    """``POST {base_url}/embeddings`` in batches, OpenAI's request and response shape."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        batch_size: int = BATCH_SIZE,
    ):
        self.url = base_url.rstrip("/") + "/embeddings"
        self.model = model
        self.batch_size = batch_size
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(read_timeout, connect=connect_timeout)
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def embed(self, texts: Sequence[str]) -> list[array]:
        vectors: list[array] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(await self._batch(texts[start : start + self.batch_size]))
        return vectors

    async def _batch(self, texts: Sequence[str]) -> list[array]:
        try:
            response = await self._http.post(self.url, json={"model": self.model, "input": texts})
        except httpx.HTTPError as error:
            raise EmbeddingError(f"{type(error).__name__}: {error}") from error
        if response.status_code != 200:
            raise EmbeddingError(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            data = response.json()["data"]
            ordered = sorted(data, key=operator.itemgetter("index"))
            vectors = [_unit(item["embedding"]) for item in ordered]
        except (ValueError, KeyError, TypeError) as error:
            raise EmbeddingError(f"unexpected embeddings response: {error!r}") from error
        if len(vectors) != len(texts):
            raise EmbeddingError(f"asked for {len(texts)} vectors, got {len(vectors)}")
        return vectors


def _unit(values: Sequence[float]) -> array:
    """Vectors are stored unit length, so cosine similarity is a plain dot product."""
    vector = array("f", (float(v) for v in values))
    norm = math.sqrt(sum(v * v for v in vector))
    if not vector or norm == 0 or math.isnan(norm):
        raise ValueError("empty or zero vector")
    return array("f", (v / norm for v in vector))


def _dot(a: array, b: array) -> float:
    return sum(map(operator.mul, a, b))


def entry_text(entry: FaqEntry) -> str:
    """What is embedded for an entry: the ways customers ask, then the answer."""
    return "\n".join([entry.question, *entry.examples, entry.answer])


def cache_key(model: str, text: str) -> str:
    return hashlib.sha256(f"{model}\x00{text}".encode()).hexdigest()


class EmbeddingCache:
    """Entry vectors in the ``embedding_cache`` table (migration m004)."""

    def __init__(self, db: Database):
        self.db = db

    async def get_many(self, keys: Sequence[str]) -> dict[str, array]:
        found: dict[str, array] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self.db.fetchall(
                f"SELECT key, vector FROM embedding_cache WHERE key IN ({marks})", chunk
            )
            for row in rows:
                vector = array("f")
                vector.frombytes(row["vector"])
                if sys.byteorder != "little":
                    vector.byteswap()
                found[row["key"]] = vector
        return found

    async def prune(self, keep: Sequence[str], older_than_days: float = PRUNE_AFTER_DAYS) -> int:
        """Delete vectors the FAQ no longer uses, once they are old enough.

        Vectors of edited or removed entries, or of a previous embedding model, would
        otherwise pile up for ever. Recent ones stay, so undoing an edit soon after
        costs no new embedding.
        """
        cutoff = (datetime.now(UTC) - timedelta(days=older_than_days)).isoformat(
            timespec="milliseconds"
        )
        rows = await self.db.fetchall(
            "SELECT key FROM embedding_cache WHERE created_at < ?", (cutoff,)
        )
        wanted = set(keep)
        stale = [row["key"] for row in rows if row["key"] not in wanted]
        for start in range(0, len(stale), 500):
            chunk = stale[start : start + 500]
            marks = ",".join("?" * len(chunk))
            await self.db.execute(f"DELETE FROM embedding_cache WHERE key IN ({marks})", chunk)
        return len(stale)

    async def put_many(self, model: str, items: Sequence[tuple[str, array]]) -> None:
        now = utcnow()
        rows = []
        for key, vector in items:
            stored = array("f", vector)
            if sys.byteorder != "little":
                stored.byteswap()
            rows.append((key, model, len(vector), stored.tobytes(), now))
        await self.db.executemany(
            "INSERT OR REPLACE INTO embedding_cache (key, model, dimensions, vector, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )


@dataclasses.dataclass
class _Prepared:
    version: str
    keys: list[str]  # cache key of each entry's text
    vectors: list[array | None]  # by entry position in knowledge.faq.entries
    positions: dict[str, int]  # entry id -> position
    # The same vectors as rows of one matrix, when numpy is installed, and which rows
    # hold a vector: scoring 10,000 entries then takes a millisecond, not a hundred.
    matrix: Any = None
    has_vector: Any = None


def _numpy() -> Any:
    """numpy when installed (it comes with the local model), imported only once needed:
    a bot that does not match by meaning should not carry it in memory."""
    try:
        import numpy
    except ImportError:  # pragma: no cover - exercised only without the optional extra
        return None
    return numpy


def _matrix(vectors: list[array | None]) -> tuple[Any, Any]:
    dims = Counter(len(v) for v in vectors if v is not None).most_common(1)
    numpy = _numpy()
    if numpy is None or not dims:
        return None, None
    width = dims[0][0]
    matrix = numpy.zeros((len(vectors), width), dtype=numpy.float32)
    has_vector = numpy.zeros(len(vectors), dtype=bool)
    for row, vector in enumerate(vectors):
        if vector is not None and len(vector) == width:
            matrix[row] = numpy.frombuffer(vector, dtype=numpy.float32)
            has_vector[row] = True
    return matrix, has_vector


class SemanticSearch:
    """Blends lexical and embedding scores; held by the core as its retriever."""

    def __init__(self, client: EmbeddingClient, cache: EmbeddingCache, weight: float):
        self.client = client
        self.confidence_fit: ConfidenceFit | None = getattr(client, "confidence_fit", None)
        self.cache = cache
        self.weight = weight
        self._prepared: _Prepared | None = None
        self._lock = asyncio.Lock()
        self._failed_at: float | None = None

    async def aclose(self) -> None:
        await self.client.aclose()

    async def prepare(self, knowledge: Knowledge) -> bool:
        """Make sure every entry of this version has a vector; False when that failed."""
        if self._prepared is not None and self._prepared.version == knowledge.version:
            return True
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER_SECONDS:
            return False
        async with self._lock:
            if self._prepared is not None and self._prepared.version == knowledge.version:
                return True
            try:
                self._prepared = await self._embed_entries(knowledge)
            except Exception as error:
                self._failed_at = time.monotonic()
                log.warning(
                    "semantic matching off for %.0f s: could not embed the FAQ: %s",
                    RETRY_AFTER_SECONDS,
                    error,
                )
                return False
            self._failed_at = None
            return True

    async def _embed_entries(self, knowledge: Knowledge) -> _Prepared:
        model = self.client.model
        entries = knowledge.faq.entries
        keys = [cache_key(model, entry_text(entry)) for entry in entries]
        known: dict[str, array] = {}
        if self._prepared is not None:
            # Vectors of the previous version: a reload usually changes a few entries.
            old = self._prepared
            known.update(
                (k, v) for k, v in zip(old.keys, old.vectors, strict=True) if v is not None
            )
        missing_keys = [k for k in dict.fromkeys(keys) if k not in known]
        known.update(await self.cache.get_many(missing_keys))
        todo = {key: entry_text(entries[i]) for i, key in enumerate(keys) if key not in known}
        if todo:
            vectors = await self.client.embed(list(todo.values()))
            fresh = list(zip(todo.keys(), vectors, strict=True))
            await self.cache.put_many(model, fresh)
            known.update(fresh)
            log.info("embedded %d FAQ entries (%d from cache)", len(todo), len(keys) - len(todo))
        pruned = await self.cache.prune(keys)
        if pruned:
            log.info("removed %d cached vectors no entry has used for a while", pruned)
        vectors = [known.get(key) for key in keys]
        return _Prepared(
            knowledge.version,
            keys,
            vectors,
            {entry.id: i for i, entry in enumerate(entries)},
            *_matrix(vectors),
        )

    async def search(self, knowledge: Knowledge, query: str, top_k: int) -> list[SearchResult]:
        lexical = knowledge.search(query, max(top_k, LEXICAL_POOL))
        if self.weight <= 0 or not await self.prepare(knowledge):
            return lexical[:top_k]
        try:
            (query_vector,) = await self.client.embed([query])
        except EmbeddingError as error:
            log.warning("semantic matching skipped for one message: %s", error)
            return lexical[:top_k]
        prepared = self._prepared
        if prepared is None or prepared.version != knowledge.version:
            return lexical[:top_k]  # a reload raced this message; the next one catches up
        return self._fuse(knowledge, prepared, lexical, query_vector, top_k)

    def _similarities(
        self, prepared: _Prepared, lexical: dict[int, SearchResult], query_vector: array
    ) -> tuple[dict[int, float], list[int], float, float]:
        """Cosines of the entries that can be ranked, the best entries by meaning alone,
        and the lowest and highest cosine of all entries scored, for scaling to 0-1."""
        dims = len(query_vector)
        matrix, has_vector = prepared.matrix, prepared.has_vector
        if matrix is not None and matrix.shape[1] == dims and has_vector.any():
            numpy = _numpy()
            scores = matrix @ numpy.frombuffer(query_vector, dtype=numpy.float32)
            valid = scores[has_vector]
            ranked = numpy.where(has_vector, scores, -numpy.inf)
            pool = min(SEMANTIC_POOL, int(has_vector.sum()))
            top = numpy.argpartition(-ranked, pool - 1)[:pool]
            best = sorted(top.tolist(), key=lambda p: (-ranked[p], p))
            cosine = {p: float(scores[p]) for p in (*lexical, *best) if has_vector[p]}
            return cosine, best, float(valid.min()), float(valid.max())
        if len(prepared.vectors) * dims <= FULL_SCAN_BUDGET:
            positions: Iterable[int] = range(len(prepared.vectors))
        else:
            positions = lexical
        cosine = {}
        for position in positions:
            vector = prepared.vectors[position]
            if vector is not None and len(vector) == dims:
                cosine[position] = _dot(query_vector, vector)
        if not cosine:
            return {}, [], 0.0, 0.0
        best = sorted(cosine, key=cosine.__getitem__, reverse=True)[:SEMANTIC_POOL]
        return cosine, best, min(cosine.values()), max(cosine.values())

    def _fuse(
        self,
        knowledge: Knowledge,
        prepared: _Prepared,
        lexical: list[SearchResult],
        query_vector: array,
        top_k: int,
    ) -> list[SearchResult]:
        """Normalised-score fusion: each signal scaled to [0, 1] over the candidates, then
        blended by ``semantic_weight``, so a clear lead in either signal can decide."""
        entries = knowledge.faq.entries
        by_position = {prepared.positions[r.id]: r for r in lexical if r.id in prepared.positions}
        cosine, best_by_meaning, low, high = self._similarities(prepared, by_position, query_vector)
        if not cosine:
            return lexical[:top_k]
        candidates = list(dict.fromkeys([*by_position, *best_by_meaning]))

        top_lexical = max((r.score for r in lexical), default=0.0)
        spread = high - low
        fused: list[tuple[float, int]] = []
        for position in candidates:
            hit = by_position.get(position)
            lex = hit.score / top_lexical if hit is not None and top_lexical > 0 else 0.0
            sem = (cosine.get(position, low) - low) / spread if spread > 0 else 0.0
            fused.append(((1 - self.weight) * lex + self.weight * sem, position))
        fused.sort(key=lambda item: (-item[0], item[1]))
        # The two best cosines, for how far each result leads every other entry.
        ranked = heapq.nlargest(2, cosine.items(), key=operator.itemgetter(1))
        best_position, best_cosine = ranked[0]
        runner_up = ranked[1][1] if len(ranked) > 1 else low
        fit = self.confidence_fit
        results = []
        for score, position in fused[:top_k]:
            hit = by_position.get(position)
            confidence = hit.confidence if hit is not None else 0.0
            if fit is not None:
                own = cosine.get(position, low)
                rival = runner_up if position == best_position else best_cosine
                confidence = fit(confidence, own, own - rival)
            results.append(SearchResult(entries[position], score, confidence))
        return results
