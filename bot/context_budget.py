"""Keeps each model request inside the model's context window.

A request holds the persona with the FAQ snippets (one system message), earlier
turns, the customer's message, and room for the answer (``llm.max_tokens``).
When it would not fit, the oldest turns go first, then the lowest-ranked FAQ
snippets; the persona and the customer's message always stay.

Tokens are estimated without a tokenizer (nothing may download at run time),
character by character, on the high side: a request trimmed a little early
costs some history; one that overflows costs an error and a retry, and on
Ollama, which cuts prompts silently from the front, the persona itself.

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

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.errors import LLMContextOverflow
from bot.knowledge.faq import SearchResult
from bot.knowledge.persona import Persona
from bot.llm import Completion, LLMClient, TextCallback
from bot.prompt import Turn, build_messages, system_message

log = logging.getLogger(__name__)

# Chat templates wrap each message in role markers and separators (SmolLM2: 5 tokens),
# and the request ends by opening the assistant's turn (3).
MESSAGE_OVERHEAD = 8
REPLY_PRIMING = 8
# Headroom over the character weights below: texts the samples did not cover.
MARGIN = 1.1
# A reported prompt below the least any common tokenizer would count was cut by the server.
_CUT_MIN_TOKENS = 64


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


def estimate_range(text: str) -> tuple[int, int]:
    high = low = 0.0
    for char in text:
        h, lo = _char_weights(char)
        high += h
        low += lo
    return int(high * MARGIN) + 1, int(low)


def estimate_tokens(text: str) -> int:
    """Tokens ``text`` takes, estimated on the high side."""
    return estimate_range(text)[0]


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def estimate_message(message: dict[str, Any]) -> int:
    return MESSAGE_OVERHEAD + estimate_tokens(_content(message))


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


@dataclass(frozen=True)
class PromptParts:
    """What one request is made of, so that it can be rebuilt with less of it."""

    persona: Persona
    snippets: tuple[SearchResult, ...]
    history: Sequence[Turn]
    customer_text: str
    history_messages: int
    history_chars: int
    tools: bool
    marker: str

    def messages(self) -> list[dict[str, Any]]:
        return build_messages(
            self.persona,
            self.snippets,
            self.history,
            self.customer_text,
            history_messages=self.history_messages,
            history_chars=self.history_chars,
            tools=self.tools,
            marker=self.marker,
        )

    def system(self, snippets: int) -> dict[str, Any]:
        content = system_message(
            self.persona, self.snippets[:snippets], tools=self.tools, marker=self.marker
        )
        return {"role": "system", "content": content}


@dataclass(frozen=True)
class Fitted:
    messages: list[dict[str, Any]]
    estimate: int  # prompt tokens, on the high side
    history: int = 0  # earlier messages offered, before trimming
    dropped_history: int = 0
    dropped_faq: int = 0


def fit(parts: PromptParts, prompt_budget: int | None, tool_tokens: int = 0) -> Fitted:
    """The request for ``parts`` within ``prompt_budget`` prompt tokens (None: no limit).

    Drops the oldest earlier turns first (never leaving an answer without its
    question), then the lowest-ranked snippets. What cannot be dropped is sent
    even when it alone is over budget: the server's answer decides then.
    """
    built = parts.messages()
    system, history, current = built[0], built[1:-1], built[-1]
    sizes = [estimate_message(m) for m in history]
    system_size = estimate_message(system)
    total = REPLY_PRIMING + tool_tokens + system_size + sum(sizes) + estimate_message(current)
    if prompt_budget is None or total <= prompt_budget:
        return Fitted(built, total, len(history))
    start = 0
    while total > prompt_budget and start < len(history):
        total -= sizes[start]
        start += 1
        while start < len(history) and history[start]["role"] == "assistant":
            total -= sizes[start]
            start += 1
    kept = len(parts.snippets)
    while total > prompt_budget and kept > 0:
        kept -= 1
        system = parts.system(kept)
        smaller = estimate_message(system)
        total += smaller - system_size
        system_size = smaller
    messages = [system, *history[start:], current]
    return Fitted(messages, total, len(history), start, len(parts.snippets) - kept)


class ContextBudget:
    """The window of one model server, and the requests fitted into it.

    The window comes from ``llm.context_tokens`` when set, else from the server,
    asked once; an overflow error teaches a smaller one.
    """

    def __init__(self, llm: LLMClient, configured_tokens: int = 0):
        self.llm = llm
        self.window: int | None = configured_tokens or None
        self._asked = bool(configured_tokens)
        self._ask_lock = asyncio.Lock()
        self._cut_warned = False

    async def known_window(self) -> int | None:
        if self._asked or self.llm.breaker.is_open:
            return self.window
        async with self._ask_lock:
            if not self._asked:
                try:
                    self.window = await self.llm.context_window()
                    self._asked = True
                except httpx.HTTPError as error:
                    # Unreachable now: ask again with the next message.
                    log.info("could not ask the model server for its context window: %s", error)
        return self.window

    def fit(self, parts: PromptParts, tools: list[dict[str, Any]] | None, window: int | None):
        tool_tokens = estimate_tokens(json.dumps(tools)) if tools else 0
        budget = None if window is None else window - self.llm.settings.max_tokens
        fitted = fit(parts, budget, tool_tokens)
        if fitted.dropped_history or fitted.dropped_faq:
            log.info(
                "prompt trimmed to fit a %s-token window: dropped %d of %d earlier messages "
                "and %d of %d FAQ snippets (now about %d tokens + %d for the answer)",
                window,
                fitted.dropped_history,
                fitted.history,
                fitted.dropped_faq,
                len(parts.snippets),
                fitted.estimate,
                self.llm.settings.max_tokens,
            )
            self._count("prompt_trimmed", "history", fitted.dropped_history)
            self._count("prompt_trimmed", "faq", fitted.dropped_faq)
        return fitted

    async def complete(
        self,
        parts: PromptParts,
        tools: list[dict[str, Any]] | None,
        on_text: TextCallback | None = None,
    ) -> tuple[Completion, list[dict[str, Any]]]:
        """The model's answer and the messages that produced it; one retry, smaller,
        when the server says the request did not fit."""
        fitted = self.fit(parts, tools, await self.known_window())
        try:
            completion = await self.llm.complete(fitted.messages, tools, on_text=on_text)
        except LLMContextOverflow as error:
            window = self._learn(error, fitted)
            log.warning(
                "the model server refused a %s-token request as too long for its context "
                "window; trying once more within %s tokens",
                error.prompt_tokens or f"~{fitted.estimate}",
                window,
            )
            self._count("prompt_trimmed", "overflow_retry", 1)
            fitted = self.fit(parts, tools, window)
            completion = await self.llm.complete(fitted.messages, tools, on_text=on_text)
        self._check_cut(completion, fitted)
        return completion, fitted.messages

    def _learn(self, error: LLMContextOverflow, fitted: Fitted) -> int:
        """The window to retry within: the one the server states, else half of this request.

        A stated window is kept for later requests; a halved guess only when no
        window was known, so one huge message does not shrink every later prompt.
        """
        sent = fitted.estimate + self.llm.settings.max_tokens
        if error.window and error.window < sent:
            self.window = error.window
            return error.window
        half = max(1, min(sent, self.window or sent) // 2)
        if self.window is None:
            self.window = half
        return half

    def _check_cut(self, completion: Completion, fitted: Fitted) -> None:
        """Ollama cuts an oversized prompt from the front without an error; the usage it
        reports then falls below the least the prompt could take."""
        reported = completion.prompt_tokens
        floor = least_tokens(fitted.messages)
        if reported is None or floor < _CUT_MIN_TOKENS or reported >= floor:
            return
        self._count("prompt_cut", None, 1)
        if not self._cut_warned:
            self._cut_warned = True
            log.warning(
                "the model server reported %d prompt tokens for a request of at least %d: it "
                "cut the prompt, persona first. On Ollama raise the context (OLLAMA_CONTEXT_LENGTH "
                "on the server, or PARAMETER num_ctx in the model's Modelfile) or set "
                "llm.context_tokens to the window it really uses",
                reported,
                floor,
            )

    def _count(self, method: str, kind: str | None, amount: int) -> None:
        observer = self.llm.observer
        if amount <= 0 or observer is None or not hasattr(observer, method):
            return
        if kind is None:
            getattr(observer, method)()
        else:
            getattr(observer, method)(kind)
