"""The doctor's model checks: endpoint, key, model, a completion, streaming and tool calls.

They run in order and stop at the first that fails for everything after it (an unreachable
endpoint, an unknown model), listing the rest as skipped rather than as more problems.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.commands.doctor_context import context_window
from bot.commands.doctor_report import PROBLEM, Finding, ok, problem, skipped, warning
from bot.commands.doctor_server import Answer, ModelServer
from bot.prompt import ESCALATE_TOOL
from bot.settings import Settings

HELLO = [{"role": "user", "content": "Reply with the single word OK."}]
HANDOFF = [{"role": "user", "content": "I want to talk to a human agent about my order."}]
USE_TOOLS_OFF = "set llm.use_tools: false in config/bot.yaml (the model then writes a marker)"


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
