"""Text plus entities, split for Telegram's limits without losing its formatting.

Telegram takes at most 4,096 characters a message, counted in code points, while
entity offsets and lengths are UTF-16 units (an emoji is one character but two
units), and at most 100 entities a message. Both counts matter: cutting by the
wrong one either refuses emoji-rich answers or misplaces every entity after the
first emoji.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from telegram import MessageEntity

TELEGRAM_TEXT_LIMIT = 4096  # code points
MAX_ENTITIES = 100


@dataclass(frozen=True)
class Formatted:
    """Text as Telegram shows it, and its entities (offsets and lengths in UTF-16 units)."""

    text: str
    entities: tuple[MessageEntity, ...] = ()


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


# --------------------------------------------------------------------------- splitting


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # two UTF-16 units each


class _Index:
    """Code point positions <-> UTF-16 offsets of one text, from where its astral characters are.

    Most answers have none or a few (emoji), so this costs one regex scan, not a loop
    over every character.
    """

    def __init__(self, text: str):
        self._astral = [m.start() for m in _ASTRAL.finditer(text)]
        self._ends = [at + n + 2 for n, at in enumerate(self._astral)]  # in UTF-16 units

    def offset(self, position: int) -> int:
        return position + bisect.bisect_left(self._astral, position)

    def position(self, utf16_offset: int) -> int:
        """The first character starting at or after ``utf16_offset``."""
        return utf16_offset - bisect.bisect_right(self._ends, utf16_offset)


def trimmed(message: Formatted) -> Formatted:
    """Without leading and trailing whitespace, the entities clipped to what is left."""
    return _cut(message, _Index(message.text), 0, len(message.text), max_entities=None)


def _cut(
    message: Formatted, index: _Index, start: int, end: int, max_entities: int | None
) -> Formatted:
    """``text[start:end]`` without surrounding whitespace, with the entities it overlaps, clipped."""
    text = message.text
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    low, high = index.offset(start), index.offset(end)
    entities = []
    for entity in message.entities:
        first = max(entity.offset, low)
        last = min(entity.offset + entity.length, high)
        if last > first:
            entities.append(_moved(entity, first - low, last - first))
    # Beyond the limit only when a message opens inside more entities than it may carry.
    return Formatted(text[start:end], tuple(entities[:max_entities]))


def _moved(entity: MessageEntity, offset: int, length: int) -> MessageEntity:
    if entity.offset == offset and entity.length == length:
        return entity
    return MessageEntity(entity.type, offset, length, url=entity.url, language=entity.language)


_BREAKS = (r"\n\s*\n", r"\n", r"[.!?。！？]\s", r"\s")


def _break_before(text: str, start: int, end: int) -> int:
    """The last paragraph break, else line break, else sentence end, else space in the window."""
    window = text[start:end]
    for pattern in _BREAKS:
        ends = [m.end() for m in re.finditer(pattern, window) if m.end() > len(window) // 3]
        if ends:
            return start + ends[-1]
    return end


def _crowded_from(message: Formatted, index: _Index, start: int, max_entities: int) -> int | None:
    """Where the entity that would be one too many for a message starting at ``start`` begins."""
    low = index.offset(start)
    count = 0
    for entity in sorted(message.entities, key=lambda e: e.offset):
        if entity.offset + entity.length <= low:
            continue
        count += 1
        if count > max_entities:
            position = index.position(entity.offset)
            return position if position > start else None
    return None


def split_formatted(
    message: Formatted,
    limit: int = TELEGRAM_TEXT_LIMIT,
    max_entities: int = MAX_ENTITIES,
) -> list[Formatted]:
    """Split into messages Telegram accepts, each keeping its part of the formatting.

    A message ends at the last good break within ``limit`` code points, or earlier
    when it would carry more than ``max_entities`` entities; an entity across a
    split is cut into both parts.
    """
    text = message.text
    index = _Index(text)
    parts: list[Formatted] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + limit)
        crowded = _crowded_from(message, index, start, max_entities)
        if crowded is not None and crowded < end:
            end = crowded
        if end < len(text):
            end = _break_before(text, start, end)
        part = _cut(message, index, start, end, max_entities)
        if part.text:
            parts.append(part)
        start = end
    return parts or [Formatted("")]
