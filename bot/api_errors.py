"""How an OpenAI-compatible API says it failed, read into the bot's ``LLMError`` types.

Providers disagree on the shape of an error body and on how they ask for a
pause (``Retry-After`` or ``retry-after-ms``); reading them here means the model
client only decides whether to try again, and the transcriber words its
failures the same way.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.context_window import overflow_error
from bot.errors import LLMHTTPError


def error_text(body: Any) -> str:
    """The message in an error body, whichever shape the provider gives it."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error:
            return str(error)
    return str(body)[:200]


def http_error(response: httpx.Response) -> LLMHTTPError:
    """The error for a response with an error status; a context overflow has its own."""
    try:
        body = response.json()
        message = error_text(body)
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
