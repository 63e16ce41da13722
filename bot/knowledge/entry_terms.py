"""An FAQ's texts split once into what each view of the FAQ search reads.

The word views (whole entry, single phrasing) score content terms per field; the
character n-gram view reads surface words, function words included. Splitting each text
once for all of them is most of the cost of building the index.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import chain

from bot.knowledge.faq import FaqEntry
from bot.knowledge.stopwords import STOPWORDS
from bot.knowledge.text import surface_words


@dataclass
class EntryTerms:
    """Per entry, in the FAQ's order: its terms by field, and its weighted surface words."""

    questions: list[Counter[str]] = field(default_factory=list)
    tags: list[Counter[str]] = field(default_factory=list)
    examples: list[Counter[str]] = field(default_factory=list)  # all examples together
    example_lists: list[list[Counter[str]]] = field(default_factory=list)  # one by one
    answers: list[Counter[str]] = field(default_factory=list)
    # Surface words weighted by field, for the character n-gram vectors: "top up" or
    # "not working" read better whole.
    surface: list[dict[str, float]] = field(default_factory=list)


def content_words(words: Iterable[str]) -> list[str]:
    """The words that say what a text is about: function words left out."""
    return [w for w in words if w not in STOPWORDS]


def split_entries(
    entries: Sequence[FaqEntry],
    terms_of: Callable[[list[str]], list[str]],
    surface_weights: tuple[float, float, float, float],
) -> EntryTerms:
    """``surface_weights``: the n-gram weights of question, tags, examples and answer."""
    split = EntryTerms()
    for e in entries:
        # Each text is split once: the n-gram view keeps function words, the word
        # views drop them.
        q_surface = surface_words(e.question)
        t_surface = surface_words(" ".join(e.tags))
        a_surface = surface_words(e.answer)
        x_surface = [surface_words(x) for x in e.examples]
        surface: dict[str, float] = {}
        for field_words, weight in zip(
            (q_surface, t_surface, chain.from_iterable(x_surface), a_surface),
            surface_weights,
            strict=True,
        ):
            if weight > 0:
                for word in field_words:
                    surface[word] = surface.get(word, 0.0) + weight
        split.surface.append(surface)
        split.questions.append(Counter(terms_of(content_words(q_surface))))
        split.tags.append(Counter(terms_of(content_words(t_surface))))
        split.answers.append(Counter(terms_of(content_words(a_surface))))
        per_example = [Counter(terms_of(content_words(w))) for w in x_surface]
        split.example_lists.append(per_example)
        all_examples: Counter[str] = Counter()
        for counts in per_example:
            all_examples.update(counts)
        split.examples.append(all_examples)
    return split
