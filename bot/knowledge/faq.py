"""FAQ entries as admins write them in ``faq/*.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.knowledge.language import in_language


@dataclass(frozen=True)
class FaqEntry:
    """One question and its answer; ``examples`` are customer phrasings that should match it."""

    id: str
    question: str
    answer: str
    tags: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    # The answer in other languages, by language code ("zh", "de", "pt-BR"), for
    # FAQ-only answers to customers who write in them; ``answer`` stays the default.
    answers: dict[str, str] = field(default_factory=dict, hash=False)
    # The question in other languages, the same way: what a customer who writes in one
    # of them reads on the button when the bot offers this entry.
    questions: dict[str, str] = field(default_factory=dict, hash=False)
    source: str = ""  # file the entry came from, for error messages and the admin view
    line: int = 0

    def answer_in(self, language: str | None) -> str:
        """The answer in ``language`` when the entry has it ("pt-BR" also finds "pt"),
        else the answer as written."""
        return in_language(self.answers, language) or self.answer

    def question_in(self, language: str | None) -> str:
        """The question in ``language`` when the entry has it, else as written."""
        return in_language(self.questions, language) or self.question


@dataclass(frozen=True)
class SearchResult:
    """A ranked FAQ entry. ``confidence`` is in [0, 1]; compare it with the configured threshold."""

    entry: FaqEntry
    score: float
    confidence: float = 0.0

    @property
    def id(self) -> str:
        return self.entry.id


@dataclass(frozen=True)
class FaqSet:
    """All FAQ entries of one knowledge version, in file order."""

    entries: tuple[FaqEntry, ...] = field(default_factory=tuple)

    def by_id(self, entry_id: str) -> FaqEntry | None:
        for entry in self.entries:
            if entry.id == entry_id:
                return entry
        return None
