"""What a model server says about its context window: asked up front, or read from its errors.

OpenAI-compatible servers share ``/chat/completions`` but not a way to report how
many tokens fit. Each is asked where it answers: llama.cpp's ``GET /props``
(the window of one slot), vLLM's ``GET {base}/models`` (``max_model_len``, also
OpenRouter's ``context_length``), Ollama's ``POST /api/show`` (the model's
``<arch>.context_length``, and ``num_ctx`` when the model sets it). OpenAI
reports nothing; there the window is learned from the first overflow error,
which most servers word differently but all send as HTTP 400.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from bot.errors import LLMContextOverflow

log = logging.getLogger(__name__)

# A server that does not answer these quickly is not going to say; the answer waits.
_PROBE_TIMEOUT = httpx.Timeout(5.0)

# Words each server uses when a request does not fit (the wording is tested per server).
_OVERFLOW_CODES = ("context_length_exceeded", "exceed_context_size_error")
_OVERFLOW_WORDS = re.compile(
    r"maximum context length|exceeds the available context size|context window|"
    r"context length exceeded",
    re.IGNORECASE,
)
_WINDOW_PATTERNS = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),  # OpenAI, vLLM, OpenRouter
    re.compile(r"available context size \((\d+) tokens?\)", re.IGNORECASE),  # llama.cpp
)
_PROMPT_PATTERNS = (
    re.compile(r"request \((\d+) tokens?\) exceeds", re.IGNORECASE),  # llama.cpp
    re.compile(r"your request has (\d+) input tokens", re.IGNORECASE),  # vLLM
    re.compile(r"resulted in (\d+) tokens", re.IGNORECASE),  # OpenAI
    re.compile(r"\((\d+) in the messages", re.IGNORECASE),  # older vLLM
)


def origin(base_url: str) -> str:
    """``http://host:port`` of an OpenAI base URL: llama.cpp and Ollama serve their own
    endpoints at the root, beside ``/v1``."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    path = path[: -len("/v1")] if path.endswith("/v1") else path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def overflow_error(status: int, body: Any, text: str) -> LLMContextOverflow | None:
    """The overflow an error response describes, or None when it is another error.

    ``body`` is the parsed JSON (``{"error": {...}}``, or vLLM's older top-level
    ``{"object": "error", "message": ...}``), ``text`` the raw body.
    """
    if status not in (400, 413, 422):
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = body if isinstance(body, dict) else {}
    message = str(error.get("message") or text or "")
    codes = (str(error.get("code") or ""), str(error.get("type") or ""))
    if not (any(c in _OVERFLOW_CODES for c in codes) or _OVERFLOW_WORDS.search(message)):
        return None
    window = _int(error.get("n_ctx")) or _first_number(_WINDOW_PATTERNS, message)
    prompt = _int(error.get("n_prompt_tokens")) or _first_number(_PROMPT_PATTERNS, message)
    return LLMContextOverflow(status, message[:300], window=window, prompt_tokens=prompt)


async def probe_window(http: httpx.AsyncClient, base_url: str, model: str) -> int | None:
    """The context window the server reports for ``model``, or None when none says.

    Raises ``httpx.TransportError`` when the server cannot be reached at all, so
    the caller asks again later instead of remembering "unknown".
    """
    root = origin(base_url)
    reached = False
    for ask in (_llama_cpp_props, _models_list, _ollama_show):
        try:
            window = await ask(http, root, base_url.rstrip("/"), model)
        except httpx.TransportError:
            continue
        except (ValueError, TypeError, KeyError, AttributeError):
            window = None  # answered, but not in the shape this server type uses
        reached = True
        if window:
            log.info("model context window: %s tokens (from %s)", window, ask.__doc__)
            return window
    if not reached:
        raise httpx.ConnectError("no context window endpoint could be reached")
    return None


async def _llama_cpp_props(http: httpx.AsyncClient, root: str, base: str, model: str) -> int | None:
    """llama.cpp /props"""
    response = await http.get(f"{root}/props", timeout=_PROBE_TIMEOUT)
    if response.status_code != 200:
        return None
    data = response.json()
    settings = data.get("default_generation_settings") or {}
    return _int(settings.get("n_ctx")) or _int(data.get("n_ctx"))


async def _models_list(http: httpx.AsyncClient, root: str, base: str, model: str) -> int | None:
    """the models list (vLLM max_model_len, OpenRouter context_length)"""
    response = await http.get(f"{base}/models", timeout=_PROBE_TIMEOUT)
    if response.status_code != 200:
        return None
    entries = [e for e in response.json().get("data") or () if isinstance(e, dict)]
    matching = [e for e in entries if e.get("id") == model] or (
        entries if len(entries) == 1 else []
    )
    for entry in matching:
        window = _int(entry.get("max_model_len")) or _int(entry.get("context_length"))
        if window:
            return window
    return None


async def _ollama_show(http: httpx.AsyncClient, root: str, base: str, model: str) -> int | None:
    """Ollama /api/show"""
    response = await http.post(f"{root}/api/show", json={"model": model}, timeout=_PROBE_TIMEOUT)
    if response.status_code != 200:
        return None
    data = response.json()
    info = data.get("model_info") or {}
    arch = info.get("general.architecture")
    trained = _int(info.get(f"{arch}.context_length")) if arch else None
    match = re.search(r"^\s*num_ctx\s+(\d+)", str(data.get("parameters") or ""), re.MULTILINE)
    configured = int(match.group(1)) if match else None
    if configured and trained:
        return min(configured, trained)
    return configured or trained


def _first_number(patterns: tuple[re.Pattern[str], ...], text: str) -> int | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return int(match.group(1))
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and value > 0:
        return int(value)
    return None
