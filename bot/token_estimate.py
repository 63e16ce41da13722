"""Estimates how many tokens a text or a chat request takes, without the model's tokenizer.

Nothing may download at run time, and each model has its own tokenizer, so
tokens are estimated character by character, on the high side: the budget
(``bot.context_budget``) must not send a request the server then refuses, or
that Ollama silently cuts. A second, low estimate serves to tell when a server
reports fewer prompt tokens than any tokenizer could have counted.

Measured against SmolLM2-135M-Instruct's tokenizer (llama.cpp's ``/tokenize``,
and for whole requests its chat template via ``/apply-template``, which gives
the same count as ``usage.prompt_tokens``; ``python bench/token_estimate.py``),
estimate ÷ real tokens:

=============================  =======  ======  =====
text                           samples  lowest  mean
=============================  =======  ======  =====
English customer messages      6        1.31    1.44
Chinese                        6        1.51    1.57
Russian (one in capitals)      6        1.14    1.33
Ukrainian                      4        1.22    1.31
the shipped FAQ entries        42       1.26    1.45
whole requests (persona, FAQ,  8        1.46    1.59
history; with/without tools)
=============================  =======  ======  =====

SmolLM2 splits digits, capitals and non-Latin scripts finely; the tokenizers of
larger models pack Chinese and Cyrillic tighter, so there the estimate errs
further on the safe side. Rare ideographs (SmolLM2: up to 3 tokens each, one
per byte) are the known exception; an overflow they cause is retried smaller.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

# Chat templates wrap each message in role markers and separators (SmolLM2: 5 tokens),
# and the request ends by opening the assistant's turn (3).
MESSAGE_OVERHEAD = 8
REPLY_PRIMING = 8
# Headroom over the character weights below: texts the samples did not cover.
MARGIN = 1.1


@lru_cache(maxsize=4096)
def _char_weights(char: str) -> tuple[float, float]:
    """(high, low) token estimates of one character.

    High: no worse than SmolLM2's tokenizer, which splits digits and most
    non-English text finely. Low: below what any common tokenizer would count.
    """
    code = ord(char)
    if code < 128:
        if char.islower():
            return 0.3, 0.12
        if char.isupper():
            return 0.6, 0.12
        if char == " ":
            return 0.1, 0.0
        if char.isdigit():
            return 1.0, 0.3
        return 1.0, 0.25  # punctuation, newlines, tabs
    if 0x3040 <= code <= 0x30FF or 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF:
        return 2.5, 0.5  # kana and Han ideographs
    size = len(char.encode("utf-8", "surrogatepass"))
    if size == 2 and char.islower():
        return 1.1, 0.2  # Cyrillic, Greek, accented Latin
    return float(size), 0.2  # capitals, other scripts, emoji: at most a token per byte


@lru_cache(maxsize=256)
def estimate_range(text: str) -> tuple[int, int]:
    """(high, low) estimates of ``text``. Every request carries the persona and FAQ
    entries the previous ones carried, so whole texts are remembered, and a text's
    characters are weighed once per kind of character, not once each."""
    high = low = 0.0
    for char, count in Counter(text).items():
        h, lo = _char_weights(char)
        high += h * count
        low += lo * count
    return int(high * MARGIN) + 1, int(low)


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` takes, estimated on the high side."""
    return estimate_range(text)[0]


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


# A picture costs what the server makes of it: OpenAI counts up to about 1,100 tokens for
# a detailed one, llama.cpp's vision models several hundred. On the high side, as always.
IMAGE_TOKENS = 1500


def estimate_message(message: dict[str, Any]) -> int:
    content = message.get("content")
    images = 0
    if isinstance(content, list):
        images = sum(1 for p in content if isinstance(p, dict) and p.get("type") == "image_url")
    return MESSAGE_OVERHEAD + estimate_tokens(_content(message)) + images * IMAGE_TOKENS


def estimate_messages(
    messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]] | None = None
) -> int:
    """Prompt tokens of a whole request, on the high side."""
    total = REPLY_PRIMING + sum(estimate_message(m) for m in messages)
    if tools:
        total += estimate_tokens(json.dumps(tools))
    return total


def least_tokens(messages: Sequence[dict[str, Any]]) -> int:
    """Fewer prompt tokens than any common tokenizer counts for ``messages``."""
    return sum(estimate_range(_content(m))[1] for m in messages)
