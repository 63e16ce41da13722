"""Telling small talk and gibberish from questions, before anything is searched.

"Hi", "thanks!", "ok" and "👍" are not questions: searching the FAQ for them finds
nothing, which would hand a polite customer to a person as "no answer in the FAQ"
and count as a failure. They get a short persona reply instead. A keyboard mash
("asdfgh") gets one request to rephrase before the normal flow takes over.

The phrase lists (``small_talk_phrases.yaml``) are the floor: a message made only of
listed phrases is small talk, instantly and for free. The bundled sentence model
catches what nobody listed, but only for short messages that are clearly nearer a
small-talk example than any question: "hi, how long do refunds take?" is a
question, and goes to the FAQ.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from pathlib import Path
from typing import Any

import numpy
import yaml

from bot.knowledge.embeddings import EmbeddingCache
from bot.knowledge.sentence_model import SentenceModel, embed_examples

log = logging.getLogger(__name__)

GREETING = "greeting"
THANKS = "thanks"
ACK = "ack"
FAREWELL = "farewell"
EMOJI = "emoji"
GIBBERISH = "gibberish"
KINDS = (GREETING, THANKS, ACK, FAREWELL, EMOJI)

# Small talk is short; anything longer carries something worth searching for.
MAX_WORDS = 8
MAX_CHARS = 60
# Like person_request: the model's similarities are close together, so a near match
# must also lead the nearest question clearly.
MIN_SIMILARITY = 0.88
MIN_LEAD = 0.03

PHRASES_FILE = Path(__file__).with_name("small_talk_phrases.yaml")

Texts = dict[str, tuple[str, ...]]


def _read_phrases(path: Path) -> tuple[Texts, Texts, tuple[str, ...]]:
    """The phrase lists and the model's examples by kind, and its look-alike questions."""
    with path.open(encoding="utf-8") as file:  # read on import: the C parser if present
        data = yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    phrases = {kind: tuple(texts) for kind, texts in data["phrases"].items()}
    examples = {kind: tuple(texts) for kind, texts in data["examples"].items()}
    unknown = (set(phrases) | set(examples)) - {GREETING, THANKS, ACK, FAREWELL}
    if unknown:  # a misspelt kind would quietly stop recognising its phrases
        raise ValueError(f"{path}: unknown kinds of small talk: {', '.join(sorted(unknown))}")
    return phrases, examples, tuple(data["questions"])


PHRASES, EXAMPLES, QUESTIONS = _read_phrases(PHRASES_FILE)

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890", "йцукенгшщзхъ", "фывапролджэ")
_LATIN_VOWELS = set("aeiouyäöüéèêáàâíìóòôúùåæøœ")
_SEPARATORS = re.compile(r"[\s,.;:!?¡¿…、。，！？；：~\-–—()\"'«»“”]+")


def _norm(text: str) -> str:
    """Lower case, with the accents and apostrophes people leave out or type differently."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return text.replace("’", "'").replace("`", "'").strip()


_PHRASE_KIND: dict[str, str] = {}
for _kind, _phrases in PHRASES.items():
    for _phrase in _phrases:
        _PHRASE_KIND.setdefault(" ".join(_SEPARATORS.split(_norm(_phrase))).strip(), _kind)
_LONGEST = max(len(p.split()) for p in _PHRASE_KIND)


def is_symbolic(text: str) -> bool:
    """Only emoji, symbols and punctuation: no letter or digit of any script."""
    return bool(text.strip()) and not any(ch.isalnum() for ch in text)


def has_emoji(text: str) -> bool:
    return any(unicodedata.category(ch) == "So" for ch in text)


def phrase_kind(text: str) -> str | None:
    """The kind of small talk a message is made of, by the lists alone, else None.

    The message is cut at punctuation and read as a run of listed phrases, longest
    first ("hi, thanks a lot!" is a greeting and thanks); one unlisted word and it
    is not small talk. Thanks wins over a greeting, which wins over the rest:
    "ok thanks" closes, "hi ok" offers help.
    """
    if is_symbolic(text):
        return EMOJI if has_emoji(text) else None
    words = [w for w in _SEPARATORS.split(_norm(_strip_symbols(text))) if w]
    if not words:
        return None
    kinds: list[str] = []
    i = 0
    while i < len(words):
        for size in range(min(_LONGEST, len(words) - i), 0, -1):
            kind = _PHRASE_KIND.get(" ".join(words[i : i + size]))
            if kind is not None:
                kinds.append(kind)
                i += size
                break
        else:
            if len(words) == 1 and _unspaced(words[0]):
                return _unspaced(words[0])
            return None
    return _strongest(kinds)


def _unspaced(word: str) -> str | None:
    """Chinese and Japanese write no spaces: "你好谢谢" is two phrases in one word."""
    kinds: list[str] = []
    i = 0
    while i < len(word):
        for size in range(len(word) - i, 0, -1):
            kind = _PHRASE_KIND.get(word[i : i + size])
            if kind is not None and size > 0:
                kinds.append(kind)
                i += size
                break
        else:
            return None
    return _strongest(kinds)


def _strongest(kinds: list[str]) -> str | None:
    for kind in (THANKS, GREETING, FAREWELL, ACK):
        if kind in kinds:
            return kind
    return None


def _strip_symbols(text: str) -> str:
    return "".join(" " if unicodedata.category(ch) in ("So", "Sk", "Cf") else ch for ch in text)


def is_gibberish(text: str) -> bool:
    """A message with nothing to read: punctuation alone, or a keyboard mash.

    Digits alone are not gibberish (an order number is an answer). A mash is a
    Latin or Cyrillic run of letters typed along one keyboard row, a word of five
    letters or more with no vowel ("sdfkjhsdfkjh"), or a few letters over and over;
    real words of every script pass.
    """
    stripped = text.strip()
    if not stripped:
        return False
    if is_symbolic(stripped):
        return not has_emoji(stripped)
    words = [w for w in _SEPARATORS.split(_norm(stripped)) if w]
    if not words or len(words) > 3:
        return False
    return all(_mashed(w) for w in words)


def _mashed(word: str) -> bool:
    if not word.isalpha() or not all(_latin_or_cyrillic(ch) for ch in word):
        return False
    if len(word) >= 4 and any(word in row or _row_run(word, row) for row in _KEYBOARD_ROWS):
        return True
    if len(word) >= 5 and not any(ch in _LATIN_VOWELS or ch in "аеёиоуыэюя" for ch in word):
        return True
    # Typed by sliding along the home row: the same few letters again and again.
    return len(word) >= 6 and len(set(word)) <= len(word) / 3


def _row_run(word: str, row: str) -> bool:
    """At least four letters in a row as they sit on one keyboard row, like "asdf"."""
    return any(word[i : i + 4] in row for i in range(len(word) - 3))


def _latin_or_cyrillic(ch: str) -> bool:
    name = unicodedata.name(ch, "")
    return name.startswith(("LATIN", "CYRILLIC"))


class SmallTalk:
    """Says what kind of small talk a message is (``KINDS``), ``GIBBERISH``, or None."""

    def __init__(self, model: SentenceModel | None, cache: EmbeddingCache | None = None):
        self.model = model
        self.cache = cache
        self._examples: tuple[Any, list[str], Any] | None = None

    async def classify(self, text: str, by_meaning: bool = True) -> str | None:
        """``by_meaning`` False asks only the phrase lists: for a message the FAQ's words
        already answer, which is a question, and whose embedding would be spent in vain."""
        text = (text or "").strip()
        if not text or text.startswith("/"):
            return None
        kind = phrase_kind(text)
        if kind is not None:
            return kind
        if is_gibberish(text):
            return GIBBERISH
        if not by_meaning or len(text) > MAX_CHARS or len(text.split()) > MAX_WORDS:
            return None
        return await self._nearest(text)

    async def _nearest(self, text: str) -> str | None:
        if self.model is None:
            return None
        try:
            examples, kinds, questions = await self._example_vectors()
            (vector,) = await self.model.embed([text], query=True)
        except Exception:
            log.exception("could not check a message for small talk")
            return None
        query = numpy.frombuffer(vector, dtype=numpy.float32)
        scores = examples @ query
        best = int(scores.argmax())
        nearest_question = float((questions @ query).max())
        if scores[best] >= MIN_SIMILARITY and scores[best] - nearest_question >= MIN_LEAD:
            return kinds[best]
        return None

    async def prepare(self) -> None:
        """Embed the examples now, so the first customer does not wait for them; never raises."""
        if self.model is None:
            return
        try:
            await self._example_vectors()
        except Exception:
            log.exception("could not prepare the small-talk examples")

    async def similarities(self, text: str) -> tuple[float, float]:
        """The nearest small-talk example and the nearest question, for tuning."""
        examples, _, questions = await self._example_vectors()
        assert self.model is not None
        (vector,) = await self.model.embed([text], query=True)
        query = numpy.frombuffer(vector, dtype=numpy.float32)
        return float((examples @ query).max()), float((questions @ query).max())

    async def _example_vectors(self) -> tuple[Any, list[str], Any]:
        if self._examples is None:
            assert self.model is not None
            kinds = [kind for kind, texts in EXAMPLES.items() for _ in texts]
            texts = [text for items in EXAMPLES.values() for text in items]
            examples = await embed_examples(self.model, self.cache, texts)
            questions = await embed_examples(self.model, self.cache, list(QUESTIONS))
            self._examples = (_rows(examples), kinds, _rows(questions))
        return self._examples


def _rows(vectors: list) -> Any:
    return numpy.stack([numpy.frombuffer(v, dtype=numpy.float32) for v in vectors])
