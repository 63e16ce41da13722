"""Client for any OpenAI-compatible ``/chat/completions`` endpoint.

One shared ``httpx.AsyncClient`` for the whole process (connection reuse is
most of the speed), a semaphore that bounds calls in flight, retries with
backoff inside a total time budget, and a circuit breaker so that when the API
is down customers are not each made to wait through the same failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.context_window import overflow_error, probe_window
from bot.errors import (
    LLMBadResponse,
    LLMConnectionError,
    LLMContextOverflow,
    LLMError,
    LLMHTTPError,
    LLMTimeout,
    LLMUnavailable,
)
from bot.settings import LlmSettings


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Completion:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float = 0.0
    finish_reason: str | None = None


@dataclass
class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures and stays open for ``cooldown`` seconds."""

    threshold: int
    cooldown: float
    failures: int = 0
    opened_at: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic)

    @property
    def is_open(self) -> bool:
        """Open now, without the half-open side effect of ``allow``."""
        return self.opened_at is not None and self.clock() - self.opened_at < self.cooldown

    def allow(self) -> bool:
        if self.opened_at is None:
            return True
        if self.clock() - self.opened_at >= self.cooldown:
            # Half-open: let one request probe; a failure re-opens at once.
            self.opened_at = None
            self.failures = self.threshold - 1
            return True
        return False

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = self.clock()


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
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise LLMBadResponse(f"unexpected completion body: {exc!r}") from None
        text = message.get("content") or ""
        tool_calls = tuple(_parse_tool_call(c) for c in message.get("tool_calls") or ())
        if not text.strip() and not tool_calls:
            raise LLMBadResponse("the model returned an empty answer")
        usage = data.get("usage") or {}
        return Completion(
            text=text,
            tool_calls=tool_calls,
            model=data.get("model") or self.model,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_ms=(time.perf_counter() - started) * 1000,
            finish_reason=choice.get("finish_reason"),
        )

    async def _stream_once(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        on_text: TextCallback,
    ) -> Completion:
        started = time.perf_counter()
        body = self.request_body(messages, tools, stream=True)
        parts: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage: dict[str, Any] = {}
        model = self.model
        finish: str | None = None
        done = False
        try:
            async with self._http.stream("POST", self.url, json=body) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _http_error(response)
                events = _sse_events(response.aiter_lines())
                async for data in events:
                    if data == "[DONE]":
                        done = True
                        break
                    chunk = _json_or_bad(data)
                    if "error" in chunk:
                        raise _partial(LLMBadResponse(_error_text(chunk)), bool(parts))
                    model = chunk.get("model") or model
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or ():
                        delta = choice.get("delta") or {}
                        finish = choice.get("finish_reason") or finish
                        for call in delta.get("tool_calls") or ():
                            slot = calls.setdefault(call.get("index", 0), {"name": "", "args": ""})
                            fn = call.get("function") or {}
                            slot["name"] += fn.get("name") or ""
                            slot["args"] += fn.get("arguments") or ""
                        if delta.get("content"):
                            parts.append(delta["content"])
                            await on_text(delta["content"])
                if done:
                    await _drain(events)
        except httpx.TimeoutException:
            raise _partial(LLMTimeout("the model API timed out"), bool(parts)) from None
        except httpx.TransportError as exc:
            raise _partial(
                LLMConnectionError(f"stream interrupted: {type(exc).__name__}"), bool(parts)
            ) from None
        if not done and finish is None:
            raise _partial(
                LLMConnectionError("the stream ended before it was complete"), bool(parts)
            )
        text = "".join(parts)
        tool_calls = tuple(
            _parse_tool_call({"function": {"name": c["name"], "arguments": c["args"]}})
            for _, c in sorted(calls.items())
        )
        if not text.strip() and not tool_calls:
            raise LLMBadResponse("the model returned an empty answer")
        return Completion(
            text=text,
            tool_calls=tool_calls,
            model=model,
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_ms=(time.perf_counter() - started) * 1000,
            finish_reason=finish,
        )

    async def _post(self, body: dict[str, Any]) -> httpx.Response:
        try:
            response = await self._http.post(self.url, json=body)
        except httpx.TimeoutException:
            raise LLMTimeout("the model API timed out") from None
        except httpx.TransportError as exc:
            raise LLMConnectionError(f"cannot reach the model API: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise _http_error(response)
        return response


def _partial(error: LLMError, partial: bool) -> LLMError:
    """Mark an error that came after text was shown: retrying would show the text twice."""
    error.partial = partial
    return error


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    async for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


async def _drain(events: AsyncIterator[str], seconds: float = 1.0) -> None:
    """Read the end of a finished stream so its connection goes back to the pool.

    httpx closes a connection whose response was not read to the end; leaving
    right after ``[DONE]`` would cost a new TCP (and TLS) connection per answer.
    """
    with contextlib.suppress(Exception):
        async with asyncio.timeout(seconds):
            async for _ in events:
                pass


def _json_or_bad(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise LLMBadResponse("malformed stream chunk") from None
    if not isinstance(value, dict):
        raise LLMBadResponse("malformed stream chunk")
    return value


def _parse_tool_call(call: dict[str, Any]) -> ToolCall:
    fn = call.get("function") or {}
    raw = fn.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except ValueError:
        args = {}
    return ToolCall(
        name=str(fn.get("name") or ""), arguments=args if isinstance(args, dict) else {}
    )


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error:
            return str(error)
    return str(body)[:200]


def _http_error(response: httpx.Response) -> LLMHTTPError:
    try:
        body = response.json()
        message = _error_text(body)
    except ValueError:
        body = None
        message = response.text[:200]
    overflow = overflow_error(response.status_code, body, response.text)
    if overflow is not None:
        return overflow
    return LLMHTTPError(response.status_code, message, retry_after=_retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    ms = response.headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    seconds = response.headers.get("retry-after")
    if seconds:
        try:
            return float(seconds)
        except ValueError:
            return None
    return None


def _backoff(attempt: int, retry_after: float | None) -> float:
    """The server's own Retry-After when it gives one, else 0.5·2ⁿ s (≤ 8 s) with jitter."""
    if retry_after is not None and 0 <= retry_after <= 60:
        return retry_after
    base = min(8.0, 0.5 * 2 ** (attempt - 1))
    return base * (0.75 + random.random() * 0.5)
