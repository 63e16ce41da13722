"""Voice notes to text through an OpenAI-compatible ``POST /audio/transcriptions``.

The same request works at OpenAI, Groq, a whisper.cpp server and
faster-whisper-server: multipart with ``file``, ``model`` and an optional
``language``, answered with JSON ``{"text": ...}``. One attempt per voice
note: the customer is waiting, and a failure is told to them at once (their
message is kept) rather than hidden behind retries of a slow, costly call.
"""

from __future__ import annotations

import httpx

from bot.api_errors import error_text


class TranscriptionError(Exception):
    """``reason``: too_large (413), unsupported (400/415: format), timeout, or failed."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class Transcriber:
    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        language: str = "",
        timeout: float = 60.0,
        connect_timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.url = base_url.rstrip("/") + "/audio/transcriptions"
        self.model = model
        self.language = language
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def transcribe(self, audio: bytes, filename: str, mime: str) -> str:
        """The words spoken in ``audio``, stripped; raises TranscriptionError."""
        data = {"model": self.model, "response_format": "json"}
        if self.language:
            data["language"] = self.language
        try:
            response = await self._http.post(
                self.url, data=data, files={"file": (filename, audio, mime)}
            )
        except httpx.TimeoutException:
            raise TranscriptionError("timeout", "the transcription service timed out") from None
        except httpx.TransportError as exc:
            raise TranscriptionError("failed", f"cannot reach it: {type(exc).__name__}") from None
        if response.status_code >= 400:
            raise TranscriptionError(_status_reason(response.status_code), _detail(response))
        try:
            text = response.json()["text"]
        except (ValueError, KeyError, TypeError):
            raise TranscriptionError("failed", "the answer has no text field") from None
        return str(text or "").strip()


def _status_reason(status: int) -> str:
    if status == 413:
        return "too_large"
    if status in (400, 415):
        return "unsupported"
    return "failed"


def _detail(response: httpx.Response) -> str:
    try:
        message = error_text(response.json())
    except ValueError:
        message = response.text[:200]
    return f"HTTP {response.status_code}: {message}"
