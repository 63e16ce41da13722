"""The doctor's model checks: endpoint, key, model, a completion, streaming and tool calls.

Each request is built by the bot's own ``LLMClient.request_body``, so what is checked is
what the bot will send; only ``max_tokens`` is lowered to keep the probes cheap.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bot.commands.doctor_context import context_window
from bot.commands.doctor_report import PROBLEM, Finding, ok, problem, skipped, warning
from bot.llm import LLMClient
from bot.prompt import ESCALATE_TOOL
from bot.settings import Settings

PROBE_MAX_TOKENS = 64  # room for a forced tool call's arguments, and for "OK"
HELLO = [{"role": "user", "content": "Reply with the single word OK."}]
HANDOFF = [{"role": "user", "content": "I want to talk to a human agent about my order."}]
USE_TOOLS_OFF = "set llm.use_tools: false in config/bot.yaml (the model then writes a marker)"


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


async def check_llm(settings: Settings, http: httpx.AsyncClient) -> list[Finding]:
    if not settings.env.llm_configured:
        return [ok("model", "none configured: answers come from the FAQ alone")]
    server = ModelServer(settings, http)
    try:
        return await _checks(server, settings)
    finally:
        await server.aclose()


async def _checks(server: ModelServer, settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    if not server.base.endswith("/v1"):
        findings.append(
            warning(
                "base URL",
                f"LLM_BASE_URL {server.base} does not end in /v1; the bot posts to "
                f"{server.base}/chat/completions",
                "most servers answer under /v1, e.g. LLM_BASE_URL=http://localhost:8000/v1",
            )
        )
    listing = await server.request("GET", "/models")
    endpoint = _endpoint(server, listing)
    findings.append(endpoint)
    if endpoint.status == PROBLEM:
        return [*findings, skipped("model, streaming, tools", "checked once the endpoint works")]
    served = _served_models(listing)
    reply = await server.request("POST", "/chat/completions", server.body(HELLO))
    model = _model(server, reply, served)
    findings.append(model)
    if model.status == PROBLEM:
        return [*findings, skipped("streaming, tools", "checked once the model answers")]
    findings.append(await _streaming(server, settings))
    findings.append(await _tools(server, settings))
    findings.append(await context_window(server, listing))
    return findings


def _endpoint(server: ModelServer, listing: Answer) -> Finding:
    if listing.status == 0:
        return problem(
            "endpoint",
            f"cannot reach {server.base} ({listing.message})",
            "start the model server, or fix LLM_BASE_URL",
        )
    if listing.status in (401, 403):
        fix = "set LLM_API_KEY to a valid key" if not server.has_key else "check LLM_API_KEY"
        return problem("API key", f"rejected ({listing.status}): {listing.message}", fix)
    key = "key accepted" if server.has_key else "no key needed"
    return ok("endpoint", f"{server.base} answers; {key}")


def _served_models(listing: Answer) -> list[str] | None:
    data = listing.body.get("data") if listing.ok and isinstance(listing.body, dict) else None
    if not isinstance(data, list):
        return None
    return [str(m.get("id")) for m in data if isinstance(m, dict)]


def _is_served(model: str, served: list[str]) -> bool:
    # Ollama lists "llama3.1:latest" and answers to "llama3.1".
    return model in served or f"{model}:latest" in served


def _model(server: ModelServer, reply: Answer, served: list[str] | None) -> Finding:
    name = server.model
    choose = (
        f"set LLM_MODEL (or llm.model) to one the server has: {', '.join(served[:8])}"
        if served
        else "set LLM_MODEL (or llm.model) to a model the server has"
    )
    if reply.status in (401, 403):
        return problem(
            "API key", f"rejected ({reply.status}): {reply.message}", "check LLM_API_KEY"
        )
    if reply.status == 404 and (reply.code == "model_not_found" or "model" in reply.message):
        return problem("model", f"{name} not found: {reply.message}", choose)
    if reply.status == 404:
        return problem(
            "model",
            f"{server.base}/chat/completions answered 404: {reply.message}",
            "check LLM_BASE_URL (it usually ends in /v1)",
        )
    if not reply.ok:
        what = f"HTTP {reply.status}" if reply.status else "no answer"
        return problem(
            "model",
            f"a tiny completion failed ({what}): {reply.message}",
            "read the model server's log; a timeout means it is overloaded or too slow",
        )
    text = _reply_text(reply.body)
    if not text.strip():
        return warning(
            "model", f"{name} answered with empty text", "try a larger llm.max_tokens or a model"
        )
    detail = f"{name} answers ({reply.seconds:.1f} s for a tiny completion)"
    # Single-model servers (llama.cpp) answer to any name; the list shows a file path.
    if served is not None and len(served) > 1 and not _is_served(name, served):
        return warning("model", f"{detail}, but /models does not list it", choose)
    return ok("model", detail)


def _reply_text(body: Any) -> str:
    try:
        return str(body["choices"][0]["message"].get("content") or "")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""


async def _streaming(server: ModelServer, settings: Settings) -> Finding:
    if not settings.llm.streaming:
        return ok("streaming", "off (llm.streaming: false): answers appear when complete")
    answer, text, finished = await server.stream(server.body(HELLO, stream=True))
    off = "or set llm.streaming: false in config/bot.yaml"
    if not answer.ok or answer.message:
        return problem("streaming", f"a streamed completion failed: {answer.message}", off)
    if not finished:
        return problem("streaming", "the stream ended without data: [DONE]", off)
    if not text.strip():
        return warning("streaming", "the stream carried no text", off)
    return ok("streaming", "works")


async def _tools(server: ModelServer, settings: Settings) -> Finding:
    if not settings.llm.use_tools:
        return ok("tool calls", "off (llm.use_tools: false): the model writes a handoff marker")
    forced = server.body(HANDOFF, [ESCALATE_TOOL])
    forced["tool_choice"] = {"type": "function", "function": {"name": "escalate"}}
    reply = await server.request("POST", "/chat/completions", forced)
    if reply.ok and not _tool_called(reply.body):
        return problem(
            "tool calls",
            "asked to call escalate(), the model answered without a tool call",
            USE_TOOLS_OFF,
        )
    if reply.ok:
        # The bot sends tool_choice "auto", which some servers refuse unless started with
        # the right flags even though a forced call works.
        reply = await server.request(
            "POST", "/chat/completions", server.body(HANDOFF, [ESCALATE_TOOL])
        )
    if reply.status == 0:
        return problem(
            "tool calls",
            f"no answer to a request with tools ({reply.message})",
            "run doctor again when the server is less busy; if it stays, " + USE_TOOLS_OFF,
        )
    if not reply.ok:
        return problem("tool calls", f"refused: {reply.message}", _tool_fix(reply.message))
    return ok("tool calls", "the model calls escalate() when asked")


def _tool_called(body: Any) -> bool:
    try:
        calls = body["choices"][0]["message"].get("tool_calls") or []
    except (KeyError, IndexError, TypeError, AttributeError):
        return False
    return any((c.get("function") or {}).get("name") == "escalate" for c in calls)


def _tool_fix(message: str) -> str:
    if "enable-auto-tool-choice" in message:
        return (
            "start vLLM with --enable-auto-tool-choice --tool-call-parser <parser for the "
            f"model>, or {USE_TOOLS_OFF}"
        )
    if "--jinja" in message:
        return f"start llama-server with --jinja, or {USE_TOOLS_OFF}"
    if "does not support tools" in message:
        return f"use a model with tool support, or {USE_TOOLS_OFF}"
    return f"if the server or model has no tool calling, {USE_TOOLS_OFF}"
