"""Keeps each model request inside the model's context window.

A request holds the persona with the FAQ snippets (one system message), earlier
turns, the customer's message, and room for the answer (``llm.max_tokens``).
When it would not fit, the oldest turns go first, then the lowest-ranked FAQ
snippets; the persona and the customer's message always stay.

Token counts come from ``bot.token_estimate``, which errs on the high side: a
request trimmed a little early costs some history; one that overflows costs an
error and a retry, and on Ollama, which cuts prompts silently from the front,
the persona itself.
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
from bot.token_estimate import REPLY_PRIMING, estimate_message, estimate_tokens, least_tokens

log = logging.getLogger(__name__)

# A reported prompt below the least it could take, and at least this big, was cut by the server.
_CUT_MIN_TOKENS = 64


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
    images: Sequence[dict[str, Any]] = ()  # the customer's pictures, for a model that sees

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
            images=self.images,
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

    def fit(
        self, parts: PromptParts, tools: list[dict[str, Any]] | None, window: int | None
    ) -> Fitted:
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
        # No window stated, or one this request kept to by the estimate: the server
        # counted more than estimated, so the request itself is halved.
        half = max(1, sent // 2)
        if self.window is None:
            self.window = error.window or half
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
