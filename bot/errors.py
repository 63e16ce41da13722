"""The project's own exception types.

Config errors carry the file and line so admins can fix them without reading
a traceback; LLM errors say whether trying again could help, so the retry
loop does not have to know about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a config or FAQ file, printed as ``path:line: message``."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The settings, persona or FAQ files cannot be used; holds every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class LLMError(Exception):
    """The chat-completion API gave no usable answer."""

    retryable: bool = False

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        # True when part of a streamed answer was already shown: a retry would repeat it.
        self.partial = False


class LLMHTTPError(LLMError):
    """The API answered with an HTTP error status."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None):
        super().__init__(f"HTTP {status}: {message}", retry_after=retry_after)
        self.status = status
        self.retryable = status in (408, 409, 429) or status >= 500


class LLMTimeout(LLMError):
    """The API did not answer in time."""

    retryable = True


class LLMConnectionError(LLMError):
    """The API could not be reached."""

    retryable = True


class LLMBadResponse(LLMError):
    """The API answered 200 but the body was not a usable completion."""

    retryable = True


class LLMUnavailable(LLMError):
    """The circuit breaker is open: the API failed repeatedly and is left alone for a while."""


class LLMContextOverflow(LLMHTTPError):
    """The request did not fit the model's context window.

    ``window`` is the window the server stated in its error, when it stated one;
    the caller may try once more with a smaller prompt, so this is not retryable
    as it stands and says nothing about the API's health.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        window: int | None = None,
        prompt_tokens: int | None = None,
    ):
        super().__init__(status, message)
        self.retryable = False
        self.window = window
        self.prompt_tokens = prompt_tokens
