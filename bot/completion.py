"""What a model answer is (``Completion``, ``ToolCall``) and how one is read from a whole
``/chat/completions`` response body.

The rest of the bot works with these two types only, never with the API's JSON;
``bot.completion_stream`` builds the same ``Completion`` from a streamed answer.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bot.errors import LLMBadResponse


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


def read_completion(response: httpx.Response, model: str, started: float) -> Completion:
    """The answer in a successful response; ``started`` is when it was asked for
    (``time.perf_counter``), ``model`` the one asked for, if the body names none."""
    try:
        data = response.json()
        choice = data["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise LLMBadResponse(f"unexpected completion body: {exc!r}") from None
    text = message.get("content") or ""
    tool_calls = tuple(parse_tool_call(c) for c in message.get("tool_calls") or ())
    if not text.strip() and not tool_calls:
        raise LLMBadResponse("the model returned an empty answer")
    usage = data.get("usage") or {}
    return Completion(
        text=text,
        tool_calls=tool_calls,
        model=data.get("model") or model,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_ms=(time.perf_counter() - started) * 1000,
        finish_reason=choice.get("finish_reason"),
    )


def parse_tool_call(call: dict[str, Any]) -> ToolCall:
    """A tool call; arguments that are not a JSON object are read as none."""
    fn = call.get("function") or {}
    raw = fn.get("arguments") or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except ValueError:
        args = {}
    return ToolCall(
        name=str(fn.get("name") or ""), arguments=args if isinstance(args, dict) else {}
    )
