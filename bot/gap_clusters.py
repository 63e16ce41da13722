"""Grouping customer messages by meaning, across languages, for the knowledge-gap report.

The same missing answer arrives in many wordings and languages ("can I pay with
crypto?", "¿aceptáis bitcoin?", "можно оплатить криптовалютой?"); an admin wants
one line for it, not twenty. Messages are embedded with the bundled sentence model
as queries (``query=True``: they are what people ask, the register E5 compares
best) and grouped by average-linkage agglomerative clustering: the two closest
groups merge while their mean pairwise cosine is at least the threshold. Average
linkage was chosen over a greedy pass against centroids because this model's
cosines sit close together: a centroid soon looks near everything, and the greedy
pass ran unrelated questions together (``bench/gap_threshold.py`` shows both).

``SIMILARITY_THRESHOLD`` was chosen on ``bench/data/multilingual/shop_cases.yaml``,
where the same shop questions are asked in thirteen languages: ``python
bench/gap_threshold.py`` clusters those messages at each candidate threshold and
scores the groups against the questions pair by pair. 0.86 had the best F0.5
(0.73; precision 0.81, recall 0.53): F0.5 weighs precision twice, because a group
that mixes two questions misleads an admin more than one question split in two.

Without the model (``sentence_model.unavailable_reason()``) the same clustering
runs on word overlap (Jaccard of content words), which cannot see across
languages but still folds together the same question in the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy

from bot.knowledge.text import surface_words

SIMILARITY_THRESHOLD = 0.86  # mean cosine, multilingual-e5-small (bench/gap_threshold.py)
WORD_OVERLAP_THRESHOLD = 0.4  # mean Jaccard of content words, for the fallback
MAX_MESSAGES = 2000  # the newest this many are grouped: the pairwise matrix stays small
_SHORT_WORDS = 2  # words this short carry little meaning of their own


def cluster_vectors(vectors: Any, threshold: float = SIMILARITY_THRESHOLD) -> list[list[int]]:
    """Groups of row indices of a matrix of unit vectors, biggest first."""
    matrix = numpy.asarray(vectors, dtype=numpy.float32)
    if len(matrix) == 0:
        return []
    return average_linkage(matrix @ matrix.T, threshold)


def cluster_words(
    texts: Sequence[str], threshold: float = WORD_OVERLAP_THRESHOLD
) -> list[list[int]]:
    """The fallback without the model: groups by shared content words, biggest first."""
    if not texts:
        return []
    return average_linkage(word_similarities(texts), threshold)


def word_similarities(texts: Sequence[str]) -> Any:
    bags = [content_words(t) for t in texts]
    n = len(bags)
    similarities = numpy.eye(n, dtype=numpy.float64)
    for i in range(n):
        for j in range(i + 1, n):
            similarities[i, j] = similarities[j, i] = _jaccard(bags[i], bags[j])
    return similarities


def centre_order(similarities: Any, members: Sequence[int]) -> list[int]:
    """``members`` most central first (highest mean similarity to the rest of the group):
    the message that best stands for its group comes first."""
    block = numpy.asarray(similarities, dtype=numpy.float64)[numpy.ix_(members, members)]
    scores = block.sum(axis=1)
    order = numpy.argsort(-scores, kind="stable")
    return [members[int(i)] for i in order]


def average_linkage(similarities: Any, threshold: float) -> list[list[int]]:
    """Merge the two closest groups while their mean pairwise similarity reaches
    ``threshold`` (Lance-Williams update: one row per merge). Biggest group first,
    ties by the earliest member."""
    s = numpy.array(similarities, dtype=numpy.float64)
    n = len(s)
    numpy.fill_diagonal(s, -numpy.inf)
    size = numpy.ones(n)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    while len(members) > 1:
        flat = int(numpy.argmax(s))
        i, j = divmod(flat, n)
        if s[i, j] < threshold:
            break
        merged = (s[i] * size[i] + s[j] * size[j]) / (size[i] + size[j])
        s[i, :] = merged
        s[:, i] = merged
        s[i, i] = -numpy.inf
        s[j, :] = -numpy.inf
        s[:, j] = -numpy.inf
        size[i] += size[j]
        members[i].extend(members.pop(j))
    groups = [sorted(g) for g in members.values()]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


def content_words(text: str) -> set[str]:
    return {w for w in surface_words(text) if len(w) > _SHORT_WORDS}


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
