"""The FAQ's word index kept on disk between starts.

Building the word index is most of a large FAQ's start-up: for 10,000 entries about
1.9 s of the 2.7 s it takes to load them, where reading the index back takes 0.15 s
(bench/retrieval.py --startup 10000 --stand-in). The file holds one index, under a
key of everything it is built from: the entries' texts, the search parameters, and
the code and stemmer that build it. Any change builds it anew, and so does a file
that is missing, stale or damaged; the file is a shortcut, never a source of truth.

It is written with ``marshal``, which holds plain values only and runs no code.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import marshal
import os
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from bot.knowledge import bm25, char_ngrams, entry_terms, search, stopwords, text
from bot.knowledge.faq import FaqEntry
from bot.knowledge.search import DEFAULT_PARAMS, FaqIndex, SearchParams
from bot.knowledge.yaml_source import collector_paused

log = logging.getLogger(__name__)

MAGIC = b"support-bot word index 1\n"
_BUILDERS = (bm25, char_ngrams, entry_terms, search, stopwords, text)


@functools.cache
def _code_fingerprint() -> bytes:
    """What the index's shape and terms depend on besides the FAQ: a new release of
    the bot, of the stemmer or of Python must not read an index built by the old one."""
    digest = hashlib.sha256()
    for module in _BUILDERS:
        digest.update(Path(module.__file__ or "").read_bytes())
    with contextlib.suppress(metadata.PackageNotFoundError):
        digest.update(metadata.version("snowballstemmer").encode())
    digest.update(f"{sys.version_info[:2]} {marshal.version}".encode())
    return digest.digest()


def _key(entries: Sequence[FaqEntry], params: SearchParams) -> bytes:
    digest = hashlib.sha256(_code_fingerprint())
    digest.update(repr(params).encode())
    for e in entries:
        digest.update(repr((e.question, e.tags, e.examples, e.answer)).encode())
    return digest.hexdigest().encode()


class WordIndexCache:
    """Gives the word index of a FAQ, read from ``path`` when it was built from the same
    entries, else built and written there; None keeps nothing on disk."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.read_back = False  # whether the last index came from the file

    def index(self, entries: Sequence[FaqEntry], params: SearchParams = DEFAULT_PARAMS) -> FaqIndex:
        if self.path is None:
            return FaqIndex(entries, params=params)
        key = _key(entries, params)
        found = self._read(key, entries, params)
        self.read_back = found is not None
        if found is not None:
            return found
        index = FaqIndex(entries, params=params)
        self._write(key, index)
        return index

    def _read(
        self, key: bytes, entries: Sequence[FaqEntry], params: SearchParams
    ) -> FaqIndex | None:
        assert self.path is not None
        try:
            with self.path.open("rb") as file:
                if file.readline() != MAGIC or file.readline().rstrip(b"\n") != key:
                    return None
                with collector_paused():  # millions of small values, no cycles
                    state = marshal.loads(file.read())  # load(file) reads piecemeal, 10x slower
            index = FaqIndex.from_state(entries, state, params=params)
        except FileNotFoundError:
            return None
        except Exception as error:  # damaged: build it anew, and write it over
            log.warning(
                "rebuilding the FAQ's word index: %s could not be read: %s", self.path, error
            )
            return None
        if not index.consistent():
            log.warning("rebuilding the FAQ's word index: %s does not fit the FAQ", self.path)
            return None
        return index

    def _write(self, key: bytes, index: FaqIndex) -> None:
        assert self.path is not None
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # A file of its own, then renamed: a reader never sees half an index.
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            with os.fdopen(handle, "wb") as file:
                file.write(MAGIC + key + b"\n")
                file.write(marshal.dumps(index.state()))
            os.replace(temporary, self.path)
        except OSError as error:
            log.warning("could not keep the FAQ's word index in %s: %s", self.path, error)
            if temporary is not None:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
