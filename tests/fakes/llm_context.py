"""A context window for the LLM double, with the answers each real server gives.

Every server counts the prompt against its window, but each words the refusal
differently, and Ollama does not refuse at all: it cuts the prompt from the
front and reports the smaller count. ``ContextWindow`` reproduces those wire
formats (error bodies copied from the servers' sources and from a live
llama.cpp), and the endpoints where each server says how big its window is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tests.fakes.llm_replies import Reply, content_text, count_tokens

SERVERS = ("openai", "llama.cpp", "vllm", "vllm-legacy", "ollama")


def prompt_tokens(request: dict) -> int:
    """The double's token count of a request: its words and marks, 4 per message, the tools."""
    tokens = sum(count_tokens(content_text(m.get("content"))) + 4 for m in request["messages"])
    if request.get("tools"):
        tokens += count_tokens(json.dumps(request["tools"]))
    return tokens


@dataclass
class ContextWindow:
    """``tokens`` of context on a server of kind ``server`` (one of ``SERVERS``).

    ``reported``: whether the server's own endpoint tells the size (``/props``,
    ``/v1/models`` ``max_model_len``, ``/api/show``); OpenAI never does.
    """

    tokens: int
    server: str = "llama.cpp"
    reported: bool = True
    ollama_num_ctx_set: bool = True  # the Modelfile sets PARAMETER num_ctx
    ollama_trained_tokens: int = 131072

    def __post_init__(self) -> None:
        if self.server not in SERVERS:
            raise ValueError(f"unknown server kind {self.server!r}; one of {SERVERS}")

    def refusal(self, request: dict) -> Reply | None:
        """The 400 the server answers to a request that does not fit, else None."""
        prompt = prompt_tokens(request)
        asked = int(request.get("max_completion_tokens") or request.get("max_tokens") or 0)
        window = self.tokens
        if self.server == "llama.cpp" and prompt >= window:
            # tools/server/server-context.cpp: checked against the slot's n_ctx, prompt only.
            error = {
                "code": 400,
                "message": f"request ({prompt} tokens) exceeds the available context size "
                f"({window} tokens), try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": prompt,
                "n_ctx": window,
            }
            return Reply(status=400, error=error)
        if self.server == "openai" and prompt + asked > window:
            if prompt > window:
                message = (
                    f"This model's maximum context length is {window} tokens. However, your "
                    f"messages resulted in {prompt} tokens. Please reduce the length of the "
                    "messages."
                )
            else:
                message = (
                    f"This model's maximum context length is {window} tokens. However, you "
                    f"requested {prompt + asked} tokens ({prompt} in the messages, {asked} in "
                    "the completion). Please reduce the length of the messages or completion."
                )
            error = {
                "message": message,
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
            return Reply(status=400, error=error)
        if self.server.startswith("vllm") and prompt + asked > window:
            return self._vllm_refusal(prompt, asked)
        return None

    def _vllm_refusal(self, prompt: int, asked: int) -> Reply:
        window = self.tokens
        if self.server == "vllm-legacy":
            # vLLM before 0.10: the error object at the top level of the body.
            message = (
                f"This model's maximum context length is {window} tokens. However, you "
                f"requested {prompt + asked} tokens ({prompt} in the messages, {asked} in the "
                "completion). Please reduce the length of the messages or completion."
            )
            body = {
                "object": "error",
                "message": message,
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
            return Reply(status=400, error_body=body)
        if prompt >= window:
            message = (
                f"This model's maximum context length is {window} tokens. However, your "
                f"request has {prompt} input tokens. Please reduce the length of the input "
                "messages."
            )
        else:
            message = (
                f"'max_tokens' or 'max_completion_tokens' is too large: {asked}. This model's "
                f"maximum context length is {window} tokens and your request has {prompt} "
                f"input tokens ({asked} > {window} - {prompt}). None"
            )
        error = {"message": message, "type": "BadRequestError", "param": None, "code": 400}
        return Reply(status=400, error=error)

    def cut(self, request: dict) -> dict:
        """What Ollama's model sees: the oldest messages cut until the rest fits ``num_ctx``."""
        if self.server != "ollama":
            return request
        messages = list(request["messages"])
        while len(messages) > 1 and prompt_tokens({**request, "messages": messages}) > self.tokens:
            messages.pop(0)
        return {**request, "messages": messages}

    # -- what each server reports about itself -------------------------------------------

    def props(self, model: str) -> dict | None:
        """llama.cpp ``GET /props`` (trimmed to the fields clients read)."""
        if self.server != "llama.cpp" or not self.reported:
            return None
        return {
            "default_generation_settings": {"n_ctx": self.tokens, "params": {"n_predict": -1}},
            "total_slots": 1,
            "model_alias": model,
            "model_path": f"/models/{model}.gguf",
            "modalities": {"vision": False, "audio": False},
            "chat_template": "{{ messages }}",
            "bos_token": "<|im_start|>",
            "eos_token": "<|im_end|>",
            "build_info": "b0-fake",
        }

    def model_fields(self) -> dict[str, Any]:
        """Extra fields of a ``/v1/models`` entry (vLLM's ``max_model_len``)."""
        if self.server.startswith("vllm") and self.reported:
            return {"root": "org/model", "parent": None, "max_model_len": self.tokens}
        return {}

    def ollama_show(self, model: str) -> dict | None:
        """Ollama ``POST /api/show``."""
        if self.server != "ollama" or not self.reported:
            return None
        parameters = 'stop                           "<|im_end|>"'
        if self.ollama_num_ctx_set:
            parameters = f"num_ctx                        {self.tokens}\n{parameters}"
        return {
            "modelfile": f"FROM {model}\n",
            "parameters": parameters,
            "template": "{{ .Prompt }}",
            "details": {"format": "gguf", "family": "llama", "parameter_size": "135M"},
            "model_info": {
                "general.architecture": "llama",
                "general.parameter_count": 134515008,
                "llama.context_length": self.ollama_trained_tokens,
                "llama.embedding_length": 576,
            },
            "capabilities": ["completion", "tools"],
        }
