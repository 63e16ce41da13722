"""Client for any OpenAI-compatible ``/chat/completions`` endpoint.

One shared ``httpx.AsyncClient`` for the whole process (connection reuse is
most of the speed), a semaphore that bounds calls in flight, retries with
backoff inside a total time budget, and a circuit breaker so that when the API
is down customers are not each made to wait through the same failure.
Reading the answers is ``bot.completion``'s and ``bot.completion_stream``'s, and
reading the API's errors ``bot.api_errors``'s, so this module is the exchange alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from bot.api_errors import http_error
from bot.circuit_breaker import CircuitBreaker
from bot.completion import Completion, read_completion
from bot.completion_stream import StreamedCompletion, mark_partial, sse_events
from bot.context_window import probe_window
from bot.errors import (
    LLMConnectionError,
    LLMContextOverflow,
    LLMError,
    LLMTimeout,
    LLMUnavailable,
)
from bot.settings import LlmSettings

TextCallback = Callable[[str], Awaitable[None]]


class LLMClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        settings: LlmSettings,
        model: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: Any = None,
    ):
        self.settings = settings
        self.model = model or settings.model
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        limits = httpx.Limits(
            max_connections=settings.max_concurrent_requests,
            max_keepalive_connections=settings.max_concurrent_requests,
        )
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(
                settings.read_timeout_seconds, connect=settings.connect_timeout_seconds
            ),
            limits=limits,
            transport=transport,
        )
        self._slots = asyncio.Semaphore(settings.max_concurrent_requests)
        self.breaker = CircuitBreaker(settings.circuit_failures, settings.circuit_cooldown_seconds)
        self.observer = observer  # bot.metrics.BotMetrics when the bot serves /metrics

    async def aclose(self) -> None:
        await self._http.aclose()

    async def context_window(self) -> int | None:
        """The context window the server reports, if it reports one (``bot.context_window``)."""
        return await probe_window(self._http, self.base_url, self.model)

    def request_body(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
        }
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
        on_text: TextCallback | None = None,
    ) -> Completion:
        """One answer, retried within the time budget. ``on_text`` turns on streaming.

        Raises ``LLMUnavailable`` without calling the API while the breaker is open.
        """
        if not self.breaker.allow():
            error = LLMUnavailable("the model API failed repeatedly; waiting before trying again")
            self._observe(0.0, error)
            raise error
        deadline = time.monotonic() + self.settings.retry_budget_seconds
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                async with self._slots:
                    if on_text is not None:
                        result = await self._stream_once(messages, tools, on_text)
                    else:
                        result = await self._complete_once(messages, tools)
                self.breaker.record_success()
                self._observe(time.monotonic() - started, None)
                return result
            except LLMError as error:
                self._observe(time.monotonic() - started, error)
                attempt += 1
                delay = _backoff(attempt, error.retry_after)
                streamed_text = error.partial
                if not error.retryable or streamed_text or time.monotonic() + delay >= deadline:
                    if not isinstance(error, LLMContextOverflow):  # the API itself is fine
                        self.breaker.record_failure()
                    raise
                await asyncio.sleep(delay)
                if self.breaker.is_open:
                    # Other answers found the API down meanwhile: more retries would
                    # only keep this customer waiting for the same failure.
                    raise LLMUnavailable(f"the model API is failing: {error}") from error

    def _observe(self, seconds: float, error: LLMError | None) -> None:
        if self.observer is not None:
            self.observer.llm_attempt(seconds, error)

    async def _complete_once(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> Completion:
        started = time.perf_counter()
        body = self.request_body(messages, tools, stream=False)
        response = await self._post(body)
        return read_completion(response, self.model, started)

    async def _stream_once(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_text: TextCallback,
    ) -> Completion:
        started = time.perf_counter()
        body = self.request_body(messages, tools, stream=True)
        answer = StreamedCompletion(self.model)
        try:
            async with self._http.stream("POST", self.url, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise http_error(response)
                events = sse_events(response.aiter_lines())
                async for data in events:
                    if data == "[DONE]":
                        answer.done = True
                        break
                    for text in answer.add(data):
                        await on_text(text)
                if answer.done:
                    await _drain(events)
        except httpx.TimeoutException:
            raise mark_partial(LLMTimeout("the model API timed out"), answer.shown) from None
        except httpx.TransportError as exc:
            raise mark_partial(
                LLMConnectionError(f"stream interrupted: {type(exc).__name__}"), answer.shown
            ) from None
        return answer.completion(started)

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        try:
            response = await self._http.post(self.url, json=body)
        except httpx.TimeoutException:
            raise LLMTimeout("the model API timed out") from None
        except httpx.TransportError as exc:
            raise LLMConnectionError(f"cannot reach the model API: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise http_error(response)
        return response


async def _drain(events: AsyncIterator[str], seconds: float = 1.0) -> None:
    """Read the end of a finished stream so its connection goes back to the pool.

    httpx closes a connection whose response was not read to the end; leaving
    right after ``[DONE]`` would cost a new TCP (and TLS) connection per answer.
    """
    with contextlib.suppress(Exception):
        async with asyncio.timeout(seconds):
            async for _ in events:
                pass


def _backoff(attempt: int, retry_after: float | None) -> float:
    """The server's own Retry-After when it gives one, else 0.5·2ⁿ s (≤ 8 s) with jitter."""
    if retry_after is not None and 0 <= retry_after <= 60:
        return retry_after
    base = min(8.0, 0.5 * 2 ** (attempt - 1))
    return base * (0.75 + random.random() * 0.5)
