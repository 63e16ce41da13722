"""How many tokens the model's context holds, as the local servers report it.

There is no OpenAI-compatible way to ask; vLLM lists ``max_model_len`` with its models,
llama.cpp's ``/props`` gives each slot's ``n_ctx``, and Ollama's ``/api/show`` the
``num_ctx`` parameter or the model's own maximum (which Ollama does not use unless told).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from bot.commands.doctor_report import Finding, ok, warning

if TYPE_CHECKING:
    from bot.commands.doctor_server import Answer, ModelServer

_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)", re.MULTILINE)


async def context_window(server: ModelServer, listing: Answer) -> Finding:
    size = _from_vllm(server.model, listing)
    if size is not None:
        return ok("context window", f"{size:,} tokens (max_model_len in /v1/models)")
    props = await server.request("GET", "/props", root=True)
    size = _from_llamacpp(props)
    if size is not None:
        return ok("context window", f"{size:,} tokens per slot (n_ctx in /props)")
    show = await server.request("POST", "/api/show", {"model": server.model}, root=True)
    if show.ok and isinstance(show.body, dict):
        return _from_ollama(show.body)
    return warning(
        "context window",
        "unknown: the server reports it in none of llama.cpp's /props, vLLM's /v1/models "
        "or Ollama's /api/show",
        "make sure the model's context holds the persona, llm.max_tokens, the FAQ snippets "
        "and conversation.history_chars of history",
    )


def _from_vllm(model: str, listing: Answer) -> int | None:
    data = listing.body.get("data") if listing.ok and isinstance(listing.body, dict) else None
    for entry in data if isinstance(data, list) else ():
        if isinstance(entry, dict) and entry.get("id") == model:
            return _positive(entry.get("max_model_len"))
    return None


def _from_llamacpp(props: Answer) -> int | None:
    if not props.ok or not isinstance(props.body, dict):
        return None
    settings = props.body.get("default_generation_settings")
    if isinstance(settings, dict) and settings.get("n_ctx") is not None:
        return _positive(settings.get("n_ctx"))
    return _positive(props.body.get("n_ctx"))


def _from_ollama(show: dict) -> Finding:
    match = _NUM_CTX.search(str(show.get("parameters") or ""))
    if match:
        return ok("context window", f"{int(match[1]):,} tokens (num_ctx in Ollama's /api/show)")
    info = show.get("model_info") if isinstance(show.get("model_info"), dict) else {}
    trained = next(
        (_positive(v) for k, v in info.items() if k.endswith(".context_length")),
        None,
    )
    most = f"the model takes up to {trained:,} tokens, but " if trained else ""
    return warning(
        "context window",
        f"{most}Ollama uses its num_ctx (OLLAMA_CONTEXT_LENGTH, often 4096) and silently "
        "cuts longer prompts from the front, system message first",
        "set OLLAMA_CONTEXT_LENGTH for the Ollama server, or PARAMETER num_ctx in a Modelfile",
    )


def _positive(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
