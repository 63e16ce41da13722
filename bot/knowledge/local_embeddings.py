"""Meaning-based FAQ matching on the bot's own machine, with no embeddings API.

``retrieval.embedding_source: local`` uses WordLlama, a static embedding model: one
vector per token, averaged over the message. It installs from the package index with
the model inside the package (``pip install 'support-bot[local]'``, about 20 MB) and
never downloads anything at run time, so it works offline and costs nothing per message.
It is far smaller than a sentence transformer, yet it knows that "money back" is about
refunds, which is exactly what the lexical retriever cannot know; fused with the lexical
scores it lifts the right entry into the top three for several more messages in a hundred
(``python bench/retrieval.py``).
"""

from __future__ import annotations

import asyncio
import importlib.util
from array import array
from collections.abc import Sequence
from pathlib import Path

from bot.knowledge.confidence import ConfidenceFit

PACKAGE = "wordllama"
MODEL_NAME = "wordllama-l2_supercat-256"
INSTALL_HINT = "pip install 'support-bot[local]' (or -e '.[local]' in a checkout)"
# Larger batches go to a worker thread so that embedding a whole FAQ on a reload never
# holds up the replies to customers; one message embeds in microseconds.
INLINE_BATCH = 8


def local_model_installed() -> bool:
    return importlib.util.find_spec(PACKAGE) is not None


class LocalModelMissing(RuntimeError):
    """The optional package with the local model is not installed."""


class LocalEmbedder:
    """The same interface as ``EmbeddingClient``, computed in-process."""

    model = MODEL_NAME
    # Fitted on the tuning half of the banking benchmark at the shipped weight
    # (python bench/retrieval.py --calibrate-semantic): at the default threshold of
    # 0.83 it answers about as precisely as the word-level confidence, for more messages.
    confidence_fit = ConfidenceFit(lexical=3.588, cosine=0.199, lead=9.812, bias=-1.678)

    def __init__(self) -> None:
        try:
            import wordllama
        except ImportError as error:
            raise LocalModelMissing(
                f"the local embedding model needs the package {PACKAGE}: {INSTALL_HINT}"
            ) from error
        # The package ships its weights and tokenizer; pointing the loader at its own
        # folder finds them there, and disabling downloads makes sure it never reaches
        # out to the network if a future version moves them.
        self._model = wordllama.WordLlama.load(
            cache_dir=Path(wordllama.__file__).parent, disable_download=True
        )

    async def aclose(self) -> None:
        return None

    async def embed(self, texts: Sequence[str], *, query: bool = False) -> list[array]:
        if len(texts) <= INLINE_BATCH:
            return self._embed(texts)
        return await asyncio.to_thread(self._embed, texts)

    def _embed(self, texts: Sequence[str]) -> list[array]:
        if not texts:
            return []
        import numpy

        vectors = self._model.embed(list(texts), norm=False)
        norms = numpy.linalg.norm(vectors, axis=1, keepdims=True)
        # A text with no known token (empty, or only symbols) has no direction; a zero
        # vector leaves its ranking to the lexical scores instead of spreading NaN.
        usable = numpy.isfinite(norms) & (norms > 0)
        vectors = numpy.where(usable, vectors / numpy.where(usable, norms, 1.0), 0.0)
        return [array("f", row.tolist()) for row in vectors]
