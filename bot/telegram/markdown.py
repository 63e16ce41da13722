"""Answers written in Markdown, shown as Telegram formatting that can never fail to parse.

Models write ``**bold**``, lists, ``[links](…)`` and headings, and admins may do the
same in FAQ answers. ``telegramify-markdown`` turns that into plain text plus
``MessageEntity`` objects, which we send with ``entities=`` and no parse mode:
Telegram then parses nothing, so a stray asterisk can never make it refuse an
answer. Headings become a bold line, tables monospace text.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

import pyromark
import telegramify_markdown
from telegram import MessageEntity

from bot.telegram.formatting import Formatted, trimmed

log = logging.getLogger(__name__)

# Formatting Telegram shows for any bot. Custom emoji need a paid username, so they
# go, and so does anything the converter might add in a later version.
_KEPT_TYPES = frozenset(
    {
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "pre",
        "text_link",
        "blockquote",
        "expandable_blockquote",
    }
)

# The Markdown the converter reads (its own parser options), to find HTML the same way.
_OPTIONS = (
    pyromark.Options.ENABLE_TABLES
    | pyromark.Options.ENABLE_STRIKETHROUGH
    | pyromark.Options.ENABLE_TASKLISTS
    | pyromark.Options.ENABLE_MATH
)


def _render_config() -> telegramify_markdown.RenderConfig:
    """Headings become a bold line: the converter's emoji before each look odd in support."""
    config = telegramify_markdown.RenderConfig.isolated()
    for level in range(1, 7):
        setattr(config.markdown_symbol, f"heading_level_{level}", "")
    return config


_CONFIG = _render_config()


def plain_text(markdown: str) -> str:
    """The words of a Markdown answer without its markup, for places that show plain text."""
    return from_markdown(markdown).text


def from_markdown(markdown: str, *, partial: bool = False) -> Formatted:
    """Convert Markdown; ``partial`` first closes what a half-written answer left open."""
    source = close_open_markup(markdown) if partial else markdown
    try:
        text, entities = telegramify_markdown.convert(
            _html_as_text(source), latex_escape=False, config=_CONFIG
        )
    except Exception:  # a converter bug must never cost the customer an answer
        log.exception("could not convert an answer's Markdown; sending it as it is")
        return Formatted(markdown.strip())
    if not text.strip():
        return Formatted(markdown.strip())  # nothing but markup: the words as written
    kept = tuple(_entity(e) for e in entities if _keep(e))
    return trimmed(Formatted(text, kept))


def _html_as_text(markdown: str) -> str:
    """Escape every HTML tag, so that it shows as the text it is.

    Markdown lets HTML through and the converter drops it, so a model's "send us
    <your order number>" would reach the customer as "send us ". Escaping a tag
    can turn an HTML block into a paragraph with tags inside, hence another pass;
    an escaped ``<`` never reads as HTML again.
    """
    for _ in range(5):  # in practice two passes at most
        if "<" not in markdown:
            break
        data = markdown.encode("utf-8")
        starts = set()
        for payload, where in pyromark.events_with_range(markdown, options=_OPTIONS):
            if isinstance(payload, dict) and ("InlineHtml" in payload or "Html" in payload):
                start = data.find(b"<", where["start"], where["end"])
                if start >= 0:
                    starts.add(start)
        if not starts:
            break
        pieces, previous = [], 0
        for start in sorted(starts):
            pieces += [data[previous:start], b"\\"]
            previous = start
        pieces.append(data[previous:])
        markdown = b"".join(pieces).decode("utf-8")
    return markdown


def _keep(entity: telegramify_markdown.MessageEntity) -> bool:
    if entity.type not in _KEPT_TYPES or entity.length <= 0:
        return False
    return entity.type != "text_link" or _is_link_telegram_takes(entity.url or "")


def _is_link_telegram_takes(url: str) -> bool:
    """Web and tg:// links; Telegram refuses the rest ("Wrong HTTP URL"), so they stay text."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.scheme.lower() == "tg":
        return bool(parts.netloc or parts.path)
    return parts.scheme.lower() in ("http", "https") and "." in (parts.hostname or "")


def _entity(entity: telegramify_markdown.MessageEntity) -> MessageEntity:
    return MessageEntity(
        entity.type,
        entity.offset,
        entity.length,
        url=entity.url if entity.type == "text_link" else None,
        language=entity.language if entity.type == "pre" else None,
    )


# --------------------------------------------------------------------------- drafts

_FENCE = re.compile(r"(?m)^ {0,3}(`{3,}|~{3,})")
_OPEN_LINK = re.compile(r"\[([^\]\n]*)(\]\([^)\s]*|\])?$")  # "[text", "[text]", "[text](http"
_EMPHASIS = re.compile(r"\*\*|__|~~|\*|_")


def close_open_markup(markdown: str) -> str:
    """Close the markup a streamed answer has opened but not yet closed.

    A draft converted as it stands would show ``**half a sentence`` with its
    asterisks, and turn bold a moment later; closed, it looks as the final message
    will. Unclosed code wins over everything, since nothing inside code is markup;
    a link still missing its URL shows its text alone.
    """
    fences = _FENCE.findall(markdown)
    if len(fences) % 2:
        body = markdown.rstrip("`~")
        return body + ("" if body.endswith("\n") else "\n") + fences[-1]
    text = _OPEN_LINK.sub(r"\1", markdown).rstrip()
    text = re.sub(r"[*_~]+$", "", text).rstrip()  # an opener with nothing after it yet
    paragraph = text[text.rfind("\n\n") + 1 :]
    runs = re.findall(r"`+", paragraph)
    if len(runs) % 2 and runs[-1] == "`":
        return text + "`"
    outside_code = re.sub(r"`[^`]*`", lambda m: " " * len(m.group()), paragraph)
    stack: list[str] = []
    for match in _EMPHASIS.finditer(outside_code):
        marker, start, end = match.group(), match.start(), match.end()
        before = outside_code[start - 1] if start else " "
        after = outside_code[end] if end < len(outside_code) else " "
        if stack and stack[-1] == marker and not before.isspace():
            stack.pop()
        elif not after.isspace() and not before.isalnum():
            stack.append(marker)
    return text + "".join(reversed(stack))
