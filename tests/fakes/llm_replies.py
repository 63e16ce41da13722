"""Replies the LLM double can give, and the deterministic stand-ins for model output.

Scripted replies describe provider behaviour (text, tool calls, errors, broken streams) as
data, so a test states which failure it exercises instead of arranging for it to happen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """What the server does with one chat-completions request.

    Build with the constructors (``Reply.text``, ``Reply.tool_call``, ``Reply.http_error``,
    ``Reply.hang``, ``Reply.cut``, ``Reply.stall``, ``Reply.malformed_json``, ``Reply.no_choices``,
    ``Reply.mid_stream_error``) and adjust with ``.after(seconds)``.
    """

    content: str | None = None
    tool_calls: list[dict] = field(default_factory=list)  # {"name", "arguments", "id"?}
    chunks: int | None = None  # stream pieces per text/arguments; None = one per word
    chunk_delay: float = 0.0
    finish_reason: str | None = None
    status: int = 200
    error: dict | None = None  # the OpenAI error object, for status != 200
    error_body: dict | None = None  # a whole error body, for servers that do not wrap it
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hangs: bool = False
    cut_after: int | None = None  # close the connection after this many stream chunks
    stall_after: int | None = None  # send this many stream chunks, then nothing more
    malformed: bool = False
    empty_choices: bool = False
    stream_error: dict | None = None
    stream_error_after: int = 1
    keep_alive: bool = False  # send ": keep-alive" comment lines between chunks
    usage: dict | None = None

    @classmethod
    def text(
        cls, content: str, chunks: int | None = None, chunk_delay: float = 0.0, **kw: Any
    ) -> Reply:
        return cls(content=content, chunks=chunks, chunk_delay=chunk_delay, **kw)

    @classmethod
    def tool_call(
        cls,
        name: str,
        arguments: dict | str,
        *,
        call_id: str | None = None,
        content: str | None = None,
        chunks: int | None = 3,
        **kw: Any,
    ) -> Reply:
        """A function call; arguments may be a raw string to test malformed JSON."""
        call = {"name": name, "arguments": arguments, "id": call_id}
        return cls(content=content, tool_calls=[call], chunks=chunks, **kw)

    @classmethod
    def http_error(
        cls,
        status: int = 500,
        message: str = "The server had an error while processing your request.",
        *,
        type: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        retry_after_ms: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        kind = type or {
            400: "invalid_request_error",
            401: "invalid_request_error",
            404: "invalid_request_error",
            429: "requests",
        }.get(status, "server_error")
        all_headers = dict(headers or {})
        if retry_after is not None:
            all_headers["Retry-After"] = str(retry_after)
        if retry_after_ms is not None:
            all_headers["retry-after-ms"] = str(retry_after_ms)
        error = {"message": message, "type": kind, "param": None, "code": code}
        return cls(status=status, error=error, headers=all_headers)

    @classmethod
    def rate_limited(
        cls, retry_after: float | None = 1, retry_after_ms: int | None = None
    ) -> Reply:
        return cls.http_error(
            429,
            "Rate limit reached for requests. Please try again later.",
            code="rate_limit_exceeded",
            retry_after=retry_after,
            retry_after_ms=retry_after_ms,
        )

    @classmethod
    def hang(cls) -> Reply:
        """Never answer; the connection is closed only when the server stops."""
        return cls(hangs=True)

    @classmethod
    def cut(
        cls, after_chunks: int, content: str = "This answer is cut off before it ends"
    ) -> Reply:
        return cls(content=content, cut_after=after_chunks)

    @classmethod
    def stall(
        cls, after_chunks: int, content: str = "This answer stops and never goes on"
    ) -> Reply:
        """Stream the first chunks, then keep the connection open and silent."""
        return cls(content=content, stall_after=after_chunks)

    @classmethod
    def malformed_json(cls) -> Reply:
        return cls(content="unused", malformed=True)

    @classmethod
    def no_choices(cls) -> Reply:
        return cls(empty_choices=True)

    @classmethod
    def mid_stream_error(
        cls,
        message: str = "Upstream provider error",
        *,
        after: int = 1,
        content: str = "Partial answer that never finishes",
        type: str = "server_error",
        code: str | int | None = 502,
    ) -> Reply:
        error = {"message": message, "type": type, "code": code}
        return cls(content=content, stream_error=error, stream_error_after=after)

    def after(self, seconds: float) -> Reply:
        """The same reply, answered only after `seconds`."""
        return dataclasses.replace(self, delay=seconds)


Responder = Callable[[dict], "Reply | str | None | Awaitable[Reply | str | None]"]


def last_user_text(request: dict) -> str:
    """The newest user message's text, also when content is a list of parts."""
    for message in reversed(request.get("messages") or []):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def content_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def default_responder(request: dict) -> Reply:
    return Reply.text(f"Answer to: {last_user_text(request)}")


def forced_tool_call(request: dict) -> Reply | None:
    """A named ``tool_choice`` obliges real servers to call that function: fill its
    required string arguments with the customer's words."""
    choice = request.get("tool_choice")
    if not isinstance(choice, dict) or not request.get("tools"):
        return None
    name = (choice.get("function") or {}).get("name")
    for tool in request["tools"]:
        function = tool.get("function") or {}
        if function.get("name") == name:
            schema = function.get("parameters") or {}
            required = schema.get("required") or list(schema.get("properties") or {})
            return Reply.tool_call(name, {key: last_user_text(request) for key in required})
    return None


def count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: words and punctuation marks."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def embed(text: str, dim: int = 256) -> list[float]:
    """Deterministic embedding: hashed words and character trigrams, L2-normalised.

    Texts that share words or word fragments get a high cosine similarity, which is
    enough for retrieval tests to be meaningful without a model.
    """
    vector = [0.0] * dim
    words = re.findall(r"\w+", text.lower())
    features = [(w, 1.0) for w in words]
    for word in words:
        padded = f"#{word}#"
        features.extend((padded[i : i + 3], 0.5) for i in range(len(padded) - 2))
    for feature, weight in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dim
        vector[index] += weight if digest[4] & 1 else -weight
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector


def split_pieces(text: str, pieces: int | None) -> list[str]:
    if not text:
        return []
    if pieces is None:
        return re.findall(r"\s*\S+\s*", text) or [text]
    pieces = max(1, min(pieces, len(text)))
    size = math.ceil(len(text) / pieces)
    return [text[i : i + size] for i in range(0, len(text), size)]
