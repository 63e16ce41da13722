"""The model server as the doctor speaks to it: one httpx client, the bot's own headers and
request bodies, and every exchange reduced to an ``Answer`` (status, body, error text).

Requests are built by the bot's ``LLMClient.request_body``, so what is checked is what the
bot will send; only ``max_tokens`` is lowered to keep the probes cheap.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bot.llm import LLMClient
from bot.settings import Settings

PROBE_MAX_TOKENS = 64  # room for a forced tool call's arguments, and for "OK"


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange with the model server; status 0 means no answer at all."""

    status: int
    body: Any = None
    message: str = ""
    code: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200


class ModelServer:
    """The configured endpoint, spoken to over one httpx client with the bot's headers."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient):
        env = settings.env
        self.base = env.effective_llm_base_url
        self.origin = self.base[:-3] if self.base.endswith("/v1") else self.base
        self.model = settings.llm.model
        self.has_key = bool(env.llm_api_key)
        self.headers = {"Authorization": f"Bearer {env.llm_api_key}"} if env.llm_api_key else {}
        self.http = http
        # A completion may take as long as the bot would wait for one.
        self.generation_timeout = httpx.Timeout(
            settings.llm.read_timeout_seconds,
            connect=min(settings.llm.connect_timeout_seconds, 5.0),
        )
        probe = dataclasses.replace(
            settings.llm, max_tokens=min(settings.llm.max_tokens, PROBE_MAX_TOKENS)
        )
        self._client = LLMClient(self.base, None, probe)

    def body(self, messages: list, tools: list | None = None, stream: bool = False) -> dict:
        return self._client.request_body(messages, tools, stream)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def request(
        self, method: str, path: str, body: Any = None, *, root: bool = False
    ) -> Answer:
        url = (self.origin if root else self.base) + path
        timeout = self.generation_timeout if path == "/chat/completions" else self.http.timeout
        started = time.monotonic()
        try:
            response = await self.http.request(
                method, url, json=body, headers=self.headers, timeout=timeout
            )
        except httpx.HTTPError as error:
            return Answer(0, message=type(error).__name__)
        return _answer(response, time.monotonic() - started)

    async def stream(self, body: dict) -> tuple[Answer, str, bool]:
        """(the answer, the text streamed, whether the stream ended properly)."""
        parts: list[str] = []
        try:
            async with self.http.stream(
                "POST",
                self.base + "/chat/completions",
                json=body,
                headers=self.headers,
                timeout=self.generation_timeout,
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    return _answer(response, 0.0), "", False
                async for line in response.aiter_lines():
                    data = line[5:].strip() if line.startswith("data:") else None
                    if data == "[DONE]":
                        return Answer(200), "".join(parts), True
                    if data:
                        chunk = json.loads(data)
                        if not isinstance(chunk, dict):
                            raise ValueError("not a chunk")
                        if "error" in chunk:
                            return Answer(200, message=_message(chunk)), "".join(parts), False
                        for choice in chunk.get("choices") or ():
                            parts.append((choice.get("delta") or {}).get("content") or "")
        except (httpx.HTTPError, ValueError) as error:
            return Answer(0, message=type(error).__name__), "".join(parts), False
        return Answer(200), "".join(parts), False


def _answer(response: httpx.Response, seconds: float) -> Answer:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200:
        return Answer(200, body, seconds=seconds)
    error = body.get("error") if isinstance(body, dict) else None
    code = str(error.get("code")) if isinstance(error, dict) and error.get("code") else None
    text = _message(body) if body is not None else response.text[:200]
    return Answer(response.status_code, body, text or f"HTTP {response.status_code}", code)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error or body.get("message") or body)[:300]
    return str(body)[:300]
