"""How particular OpenAI-compatible servers differ: unknown models, missing tool support,
and where each reports the model's context window.

Mixed into FakeLLM, whose attributes ``check_models``, ``models``, ``tool_support``,
``server`` and ``context_window`` select the behaviour.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.llm_replies import Reply

# How servers without tool support answer a request with tools:
# (status, their exact error text, error type, only for tool_choice "auto").
TOOL_SUPPORT = {
    "vllm_no_auto": (
        400,
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        "BadRequestError",
        True,
    ),
    "llamacpp_no_jinja": (500, "tools param requires --jinja flag", "server_error", False),
}


class ServerQuirks:
    """Mixin for FakeLLM: refusals before generation, and llama.cpp's and Ollama's extras."""

    check_models: bool
    models: list[str]
    model: str
    tool_support: str
    server: str
    context_window: int | None

    def _unknown_model(self, body: dict) -> Reply | None:
        model = body.get("model")
        if not self.check_models or model in self.models:
            return None
        return Reply.http_error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            code="model_not_found",
        )

    def _refusal(self, body: dict) -> Reply | None:
        """What a real server answers before generating: an unknown model, tool quirks."""
        if (unknown := self._unknown_model(body)) is not None:
            return unknown
        if not body.get("tools"):
            return None
        quirk = TOOL_SUPPORT.get(self.tool_support)
        if quirk is None:
            return None
        status, message, kind, auto_only = quirk
        if auto_only and body.get("tool_choice", "auto") != "auto":
            return None  # vLLM answers a named tool choice by guided decoding
        reply = Reply.http_error(status, message, type=kind)
        reply.error["code"] = status
        return reply

    async def _handle_props(self, request: web.Request) -> web.StreamResponse:
        """llama.cpp's server properties; n_ctx is each slot's context."""
        if self.server != "llamacpp":
            raise web.HTTPNotFound()
        settings = {"n_ctx": self.context_window, "params": {"n_predict": -1}}
        return web.json_response(
            {
                "default_generation_settings": settings,
                "total_slots": 1,
                "model_path": f"/models/{self.model}.gguf",
                "chat_template": "{{ messages }}",
                "build_info": "b0000-fake",
            }
        )

    async def _handle_ollama_show(self, request: web.Request) -> web.StreamResponse:
        """Ollama's model details: the model's own maximum, and num_ctx when set."""
        if self.server != "ollama":
            raise web.HTTPNotFound()
        body = await request.json()
        if body.get("model") not in self.models:
            return web.json_response(
                {"error": f"model '{body.get('model')}' not found"}, status=404
            )
        info = {"general.architecture": "llama", "llama.context_length": 131072}
        answer: dict[str, Any] = {"modelfile": "FROM fake", "model_info": info}
        if self.context_window is not None:
            answer["parameters"] = f"num_ctx                        {self.context_window}"
        return web.json_response(answer)
