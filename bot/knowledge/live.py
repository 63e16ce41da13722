"""The knowledge in use right now, and swapping in a new version without a restart.

A ``Knowledge`` is immutable: persona, FAQ, search index and a content hash.
Handlers take ``base.current`` once per message, so a reload between messages
is atomic for them, and a broken edit never replaces the last good version.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import astuple, dataclass
from pathlib import Path

from bot.errors import ConfigError
from bot.knowledge.faq import FaqSet, SearchResult
from bot.knowledge.loader import faq_paths, load_faq, load_persona
from bot.knowledge.persona import Persona
from bot.knowledge.search import FaqIndex
from bot.knowledge.word_index_cache import WordIndexCache

log = logging.getLogger(__name__)

# A changed file must look the same for this long before it is read; at most
# _SETTLE_ROUNDS pauses, so a file rewritten non-stop is still picked up.
_SETTLE_SECONDS = 0.2
_SETTLE_ROUNDS = 5


@dataclass(frozen=True)
class Knowledge:
    persona: Persona
    faq: FaqSet
    index: FaqIndex
    version: str  # first 12 hex digits of a hash over the files' bytes

    def search(self, query: str, top_k: int) -> list[SearchResult]:
        return self.index.search(query, top_k)

    def speaking(self, language: str | None) -> Knowledge:
        """This knowledge with the persona's texts in ``language`` where it has them."""
        persona = self.persona.speaking(language)
        return self if persona is self.persona else dataclasses.replace(self, persona=persona)


def faq_knowledge(faq: FaqSet) -> Knowledge:
    """Knowledge for searching a FAQ alone (``faq search``, benchmarks): searching never
    answers, so it needs no persona; the version is a hash of the entries."""
    digest = hashlib.sha256()
    for entry in faq.entries:
        digest.update(repr(astuple(entry)).encode())
    persona = Persona(name="", company="", instructions="")
    return Knowledge(persona, faq, FaqIndex(faq.entries), digest.hexdigest()[:12])


def _files(config_dir: Path, faq_dir: Path) -> list[Path]:
    return [config_dir / "persona.yaml", *faq_paths(faq_dir)]


def _fingerprint(files: list[Path]) -> tuple[tuple[str, int, int], ...]:
    marks = []
    for path in files:
        try:
            stat = path.stat()
            marks.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:
            marks.append((str(path), -1, -1))
    return tuple(marks)


def load_knowledge(
    config_dir: Path, faq_dir: Path, words: WordIndexCache | None = None
) -> Knowledge:
    """Load and index persona and FAQ; raises ConfigError with every problem found.

    ``words`` keeps the word index between starts, for large FAQs."""
    persona_path = config_dir / "persona.yaml"
    paths = faq_paths(faq_dir)
    problems = []
    persona = faq = None
    try:
        persona = load_persona(persona_path)
    except ConfigError as error:
        problems.extend(error.problems)
    try:
        faq = load_faq(paths)
    except ConfigError as error:
        problems.extend(error.problems)
    if problems or persona is None or faq is None:
        raise ConfigError(problems)
    digest = hashlib.sha256()
    for path in [persona_path, *paths]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    index = words.index(faq.entries) if words is not None else FaqIndex(faq.entries)
    return Knowledge(persona, faq, index, digest.hexdigest()[:12])


ProblemListener = Callable[[ConfigError], Awaitable[None]]
ReloadListener = Callable[[Knowledge], Awaitable[object]]


class KnowledgeBase:
    """Holds the live Knowledge and replaces it when the files change and still validate."""

    def __init__(self, config_dir: Path, faq_dir: Path, words: WordIndexCache | None = None):
        """``words`` keeps the word index between starts and reloads, for large FAQs."""
        self.config_dir = Path(config_dir)
        self.faq_dir = Path(faq_dir)
        self.words = words
        self.current = load_knowledge(self.config_dir, self.faq_dir, words)
        self._seen = _fingerprint(_files(self.config_dir, self.faq_dir))
        self._listeners: list[ProblemListener] = []
        self._reload_listeners: list[ReloadListener] = []
        self.last_error: ConfigError | None = None

    def on_problem(self, listener: ProblemListener) -> None:
        """Called with the errors whenever a changed file fails validation."""
        self._listeners.append(listener)

    def on_reload(self, listener: ReloadListener) -> None:
        """Called with the new knowledge after a reload changed it, e.g. to embed new entries
        before the first customer asks about them."""
        self._reload_listeners.append(listener)

    async def reload(self) -> Knowledge:
        """Validate the files and swap them in; on errors keep the current knowledge and raise."""
        self._seen = _fingerprint(_files(self.config_dir, self.faq_dir))
        try:
            # Indexing 10k entries takes a moment: keep it off the event loop.
            knowledge = await asyncio.to_thread(
                load_knowledge, self.config_dir, self.faq_dir, self.words
            )
        except ConfigError as error:
            self.last_error = error
            log.error(
                "knowledge reload failed; keeping version %s:\n%s", self.current.version, error
            )
            for listener in self._listeners:
                try:
                    await listener(error)
                except Exception:
                    log.exception("could not report the reload problem")
            raise
        self.last_error = None
        changed = knowledge.version != self.current.version
        if changed:
            log.info(
                "knowledge reloaded: version %s, %d FAQ entries",
                knowledge.version,
                len(knowledge.faq.entries),
            )
        self.current = knowledge
        if changed:
            for on_reload in self._reload_listeners:
                try:
                    await on_reload(knowledge)
                except Exception:
                    log.exception("a reload listener failed")
        return knowledge

    def changed(self) -> bool:
        return _fingerprint(_files(self.config_dir, self.faq_dir)) != self._seen

    async def watch(self, interval: float) -> None:
        """Poll modification times; cheap enough to run every few seconds forever.

        Nothing that goes wrong in one round may end the loop: a watcher that
        died quietly would leave admins editing files the bot no longer reads.
        """
        while True:
            await asyncio.sleep(interval)
            try:
                if self.changed():
                    await self._settled(min(interval, _SETTLE_SECONDS))
                    with contextlib.suppress(ConfigError):
                        await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("knowledge watcher: could not check or reload the files")

    async def _settled(self, pause: float) -> None:
        """Wait until the files stop changing, so a save caught halfway is not reported
        to admins as a broken file (editors and copy tools may write in several steps)."""
        files = _files(self.config_dir, self.faq_dir)
        before = _fingerprint(files)
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(pause)
            files = _files(self.config_dir, self.faq_dir)
            now = _fingerprint(files)
            if now == before:
                return
            before = now
