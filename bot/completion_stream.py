"""A streamed ``/chat/completions`` answer, put together chunk by chunk into a ``Completion``.

A stream brings its text, its tool calls (in pieces, by index), its usage and its
finish reason spread over many server-sent events; collecting them apart from the
HTTP exchange keeps the model client's streaming loop short, and says in one place
which failures came after text was already shown to the customer.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from bot.api_errors import error_text
from bot.completion import Completion, parse_tool_call
from bot.errors import LLMBadResponse, LLMConnectionError, LLMError


def mark_partial(error: LLMError, partial: bool) -> LLMError:
    """Mark an error that came after text was shown: retrying would show the text twice."""
    error.partial = partial
    return error


async def sse_events(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The data of each server-sent event."""
    async for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()


class StreamedCompletion:
    """The answer so far: text, tool calls, usage, model and finish reason."""

    def __init__(self, model: str):
        self.parts: list[str] = []
        self.calls: dict[int, dict[str, str]] = {}
        self.usage: dict[str, Any] = {}
        self.model = model
        self.finish: str | None = None
        self.done = False  # the server said [DONE]

    @property
    def shown(self) -> bool:
        """Some text was passed on already, so a failure now is a partial one."""
        return bool(self.parts)

    def add(self, data: str) -> list[str]:
        """Take one event's data; the new text in it, in order."""
        chunk = _chunk(data)
        if "error" in chunk:
            raise mark_partial(LLMBadResponse(error_text(chunk)), self.shown)
        self.model = chunk.get("model") or self.model
        self.usage = chunk.get("usage") or self.usage
        texts: list[str] = []
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            self.finish = choice.get("finish_reason") or self.finish
            for call in delta.get("tool_calls") or ():
                slot = self.calls.setdefault(call.get("index", 0), {"name": "", "args": ""})
                fn = call.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["args"] += fn.get("arguments") or ""
            if delta.get("content"):
                self.parts.append(delta["content"])
                texts.append(delta["content"])
        return texts

    def completion(self, started: float) -> Completion:
        """The whole answer once the stream ended; ``started`` as ``time.perf_counter``."""
        if not self.done and self.finish is None:
            raise mark_partial(
                LLMConnectionError("the stream ended before it was complete"), self.shown
            )
        text = "".join(self.parts)
        tool_calls = tuple(
            parse_tool_call({"function": {"name": c["name"], "arguments": c["args"]}})
            for _, c in sorted(self.calls.items())
        )
        if not text.strip() and not tool_calls:
            raise LLMBadResponse("the model returned an empty answer")
        return Completion(
            text=text,
            tool_calls=tool_calls,
            model=self.model,
            prompt_tokens=self.usage.get("prompt_tokens"),
            completion_tokens=self.usage.get("completion_tokens"),
            latency_ms=(time.perf_counter() - started) * 1000,
            finish_reason=self.finish,
        )


def _chunk(data: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        raise LLMBadResponse("malformed stream chunk") from None
    if not isinstance(value, dict):
        raise LLMBadResponse("malformed stream chunk")
    return value
