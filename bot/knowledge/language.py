"""Which language a customer message is written in, so a FAQ answer can be given in it.

Telegram's ``language_code`` is the language of the customer's app, not of the
message: a German app is often used to write English. It is therefore only a hint,
used when the text itself is too short to tell (``"ok"``, ``"Danke"``).

Detection is py3langid (BSD licence, its model inside the wheel, numpy only),
restricted to widely written languages so that a short English question is not
called Pidgin or Walloon. The model takes a second or two to load, so it loads in
a worker thread on first use, and until it has loaded the script alone decides
where it can (Chinese, Japanese, Korean, Arabic, Hebrew, Greek, Thai, Hindi).

A wrong guess would answer a customer in a language they did not write, which is
worse than answering in the FAQ's own language; so a guess is only taken when it
is clear, and otherwise the caller uses the answer as written.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

# Languages a shop's customers plausibly write in; py3langid knows 97, many of them
# close relatives that short messages cannot tell apart from these.
LANGUAGES = [
    "ar",
    "bg",
    "bn",
    "ca",
    "cs",
    "da",
    "de",
    "el",
    "en",
    "es",
    "et",
    "fa",
    "fi",
    "fr",
    "he",
    "hi",
    "hr",
    "hu",
    "id",
    "it",
    "ja",
    "ko",
    "lt",
    "lv",
    "ms",
    "nl",
    "no",
    "pl",
    "pt",
    "ro",
    "ru",
    "sk",
    "sl",
    "sr",
    "sv",
    "ta",
    "th",
    "tr",
    "uk",
    "ur",
    "vi",
    "zh",
]
CLEAR = 0.5  # probability at which the text decides alone
WITH_HINT = 0.08  # probability at which the app's language, when it is a candidate, decides
MIN_LETTERS = 2

# Scripts that name one language among those above (Cyrillic, Latin and Arabic do not).
_SCRIPT_LANGUAGE = {
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "HANGUL": "ko",
    "CJK": "zh",
    "THAI": "th",
    "DEVANAGARI": "hi",
    "GREEK": "el",
    "HEBREW": "he",
    "BENGALI": "bn",
    "TAMIL": "ta",
}


def primary_subtag(code: str) -> str:
    """'pt-BR' -> 'pt', 'zh-hans' -> 'zh'; Telegram and admins write codes either way."""
    return code.replace("_", "-").split("-")[0].strip().lower()


LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")  # zh, de, pt-BR


def in_language(options: Mapping[str, T], language: str | None) -> T | None:
    """What ``options`` (by language code, as an admin wrote them) hold for ``language``:
    the code itself, else its primary language ("pt-BR" also finds "pt"); None if neither."""
    if not language or not options:
        return None
    wanted = language.lower()
    for code, value in options.items():
        if code.lower() == wanted:
            return value
    primary = primary_subtag(wanted)
    for code, value in options.items():
        if primary_subtag(code) == primary:
            return value
    return None


def detect_language(text: str, hint: str = "") -> str | None:
    """The message's language code, or None when it cannot be told with confidence."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < MIN_LETTERS:
        return None
    by_script = _script_language(letters)
    if by_script is not None:
        return by_script
    identifier = _identifier(wait=False)
    if identifier is None:
        return None
    return _identified(identifier, text, primary_subtag(hint))


# Retrieval, the answer and the persona's texts each ask about the same message.
@functools.lru_cache(maxsize=1024)
def _identified(identifier: Any, text: str, wanted: str) -> str | None:
    ranked = identifier.rank(text)
    best, probability = ranked[0]
    if probability >= CLEAR:
        return best
    for code, p in ranked[:3]:
        if code == wanted and p >= WITH_HINT:
            return wanted
    return None


def _script_language(letters: list[str]) -> str | None:
    """The language a script names, when most letters are in it; Japanese wins over
    Chinese as soon as any kana appear, since Japanese writes with both."""
    counts: dict[str, int] = {}
    for char in letters:
        name = unicodedata.name(char, "")
        for script, code in _SCRIPT_LANGUAGE.items():
            if name.startswith(script):
                counts[code] = counts.get(code, 0) + 1
                break
    if not counts:
        return None
    if "ja" in counts:
        return "ja"
    code, count = max(counts.items(), key=lambda item: item[1])
    return code if count * 2 >= len(letters) else None


_start_lock = threading.Lock()
_ready = threading.Event()
_state: dict[str, Any] = {}


def _identifier(wait: bool) -> Any:
    """The identifier once loaded; the first call starts loading it in the background."""
    if not _ready.is_set():
        with _start_lock:
            if "started" not in _state:
                _state["started"] = True
                threading.Thread(target=_load, name="language-model", daemon=True).start()
        if wait:
            _ready.wait()
    return _state.get("identifier")


def _load() -> None:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        identifier.set_languages(LANGUAGES)
        _state["identifier"] = identifier
    except Exception as error:  # a missing or broken package: answers stay as written
        log.warning("language detection off: %s", error)
    finally:
        _ready.set()


def warm_up() -> None:
    """Load the model now (start-up, tests, benchmarks) instead of on first use."""
    _identifier(wait=True)


def main_language(texts: Iterable[str], sample: int = 50) -> str:
    """The language most of ``texts`` are written in (an FAQ's questions), or ''."""
    found = Counter(detect_language(text) for _, text in zip(range(sample), texts, strict=False))
    found.pop(None, None)
    return found.most_common(1)[0][0] if found else ""
