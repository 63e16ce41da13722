"""Unicode normalisation and tokenisation shared by the FAQ index and its queries.

Customers type on phones in many scripts: with or without accents, in full-width forms,
with curly apostrophes, in languages that put no spaces between words. Both the FAQ text
and the query go through the same functions so that these variations meet on equal terms.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache

from bot.knowledge.stopwords import STOPWORDS

try:  # optional: Snowball stemmers merge word forms (arrived/arrival, карта/карты)
    import snowballstemmer as _snowball
except ImportError:  # pragma: no cover - exercised only without the dependency
    _snowball = None

_APOSTROPHES = re.compile(r"['’‘ʼ`´]")
# A run of ideographs or kana: these scripts are written without spaces between words.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u31f0-\u31ff\uff66-\uff9f"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W_]+")
_CJK_RUN = re.compile(rf"[{_CJK}]")


# Accents are dropped on Latin and Greek letters, where people often omit them. Cyrillic
# keeps its marks: й is a letter of its own that nobody writes as и.
_MARKS_ON_LATIN_GREEK = re.compile(
    "(?<=[\u0000-\u024f\u1e00-\u1eff\u0370-\u03ff])"
    "[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+"
)


def fold_spelling(text: str) -> str:
    """Fold the ways one word can be typed into one spelling, so they match each other.

    For word search: apostrophes go ("hasn't" = "hasnt") and ё becomes е. Handoff
    phrases keep both (``bot.handoff.fold_phrase``).
    """
    if text.isascii():  # the common case, and NFKC leaves ASCII alone
        return _APOSTROPHES.sub("", text.lower())
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("ё", "е")  # Russian writers routinely write е for ё
    text = _APOSTROPHES.sub("", text)  # "hasn't" and "hasnt" are the same word to a customer
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", _MARKS_ON_LATIN_GREEK.sub("", decomposed))


def words(text: str) -> list[str]:
    """Split normalised text into words; runs of CJK characters stay whole for ``terms``."""
    return _TOKEN.findall(text)


def surface_words(text: str) -> list[str]:
    """Normalised words with function words kept, for matching by character n-grams."""
    return words(fold_spelling(text))


def is_cjk(token: str) -> bool:
    return bool(_CJK_RUN.match(token))


@lru_cache(maxsize=8)
def stemmer_for(language: str) -> Callable[[str], str]:
    """A cached word -> stem function; identity when no stemmer is available."""
    if _snowball is None or language not in _snowball.algorithms():
        return _identity
    stem = _snowball.stemmer(language).stemWord
    return lru_cache(maxsize=200_000)(stem)


def _identity(word: str) -> str:
    return word


def _script_language(word: str, default: str) -> str:
    """Pick a stemmer by script so a Russian word in an English FAQ is still stemmed right."""
    first = word[0]
    if "\u0400" <= first <= "\u04ff":
        return "russian"
    if "\u0370" <= first <= "\u03ff":
        return "greek"
    return default


class Analyzer:
    """Turns text into index terms: stemmed words, and character bigrams for CJK runs."""

    def __init__(self, language: str = "english") -> None:
        self.language = language
        self._cache: dict[str, tuple[str, ...]] = {}

    def words(self, text: str) -> list[str]:
        """Normalised words without function words; CJK runs are kept whole."""
        return [w for w in words(fold_spelling(text)) if w not in STOPWORDS]

    def terms(self, text: str) -> list[str]:
        return self.terms_of(self.words(text))

    def terms_of(self, tokens: list[str]) -> list[str]:
        out: list[str] = []
        for token in tokens:
            cached = self._cache.get(token)
            if cached is None:
                cached = self._token_terms(token)
                if len(self._cache) < 500_000:
                    self._cache[token] = cached
            out.extend(cached)
        return out

    def _token_terms(self, token: str) -> tuple[str, ...]:
        if is_cjk(token):
            if len(token) == 1:
                return (token,)
            # Overlapping bigrams find multi-character words without a dictionary;
            # single characters add recall for one-character words.
            grams = [token[i : i + 2] for i in range(len(token) - 1)]
            return (*grams, *token)
        lang = _script_language(token, self.language)
        return (stemmer_for(lang)(token),)
