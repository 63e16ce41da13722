"""Reading context overflows out of each server's error, and asking servers for their window.

The error bodies are the servers' own: llama.cpp's as a live server sent it,
the others as their sources and users' reports show them. The client is then
driven over HTTP against the LLM double answering in each server's format.
"""

from __future__ import annotations

import json

import httpx
import pytest

from bot.context_window import origin, overflow_error
from bot.errors import LLMContextOverflow
from bot.llm import LLMClient
from bot.settings import LlmSettings
from tests.fakes.llm_context import ContextWindow

# (server, HTTP status, body, window stated, prompt tokens stated)
OVERFLOWS = [
    (
        "openai",
        400,
        {
            "error": {
                "message": "This model's maximum context length is 128000 tokens. However, your "
                "messages resulted in 130532 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
        128000,
        130532,
    ),
    (
        "openai, no window stated",
        400,
        {
            "error": {
                "message": "Your input exceeds the context window of this model. Please adjust "
                "your input and try again.",
                "type": "invalid_request_error",
                "param": "input",
                "code": "context_length_exceeded",
            }
        },
        None,
        None,
    ),
    (
        "llama.cpp",
        400,
        {
            "error": {
                "code": 400,
                "message": "request (631 tokens) exceeds the available context size (512 tokens), "
                "try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 631,
                "n_ctx": 512,
            }
        },
        512,
        631,
    ),
    (
        "vllm, prompt too long",
        400,
        {
            "error": {
                "message": "This model's maximum context length is 4096 tokens. However, your "
                "request has 5000 input tokens. Please reduce the length of the input messages.",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        },
        4096,
        5000,
    ),
    (
        "vllm, prompt and max_tokens too long",
        400,
        {
            "error": {
                "message": "'max_tokens' or 'max_completion_tokens' is too large: 8000. This "
                "model's maximum context length is 4096 tokens and your request has 2778 input "
                "tokens (8000 > 4096 - 2778). None",
                "type": "BadRequestError",
                "param": None,
                "code": 400,
            }
        },
        4096,
        2778,
    ),
    (
        "vllm before 0.10",
        400,
        {
            "object": "error",
            "message": "This model's maximum context length is 2048 tokens. However, you "
            "requested 2100 tokens (2000 in the messages, 100 in the completion). Please reduce "
            "the length of the messages or completion.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        2048,
        2000,
    ),
    (
        "openrouter",
        400,
        {
            "error": {
                "message": "This endpoint's maximum context length is 8192 tokens. However, you "
                "requested about 9120 tokens (8520 of text input, 600 in the output). Please "
                'reduce the length of either one, or use the "middle-out" transform to compress '
                "your prompt automatically.",
                "code": 400,
            }
        },
        8192,
        None,
    ),
]

NOT_OVERFLOWS = [
    (400, {"error": {"message": "Invalid value for 'temperature'", "code": "invalid_value"}}),
    (400, {"error": {"message": "'messages' must contain at least one message"}}),
    (429, {"error": {"message": "maximum context length is 10 tokens", "code": "rate_limit"}}),
    (500, {"error": {"message": "context_length_exceeded", "type": "server_error"}}),
    (400, "not json at all"),
]


@pytest.mark.parametrize(
    ("server", "status", "body", "window", "prompt"), OVERFLOWS, ids=[o[0] for o in OVERFLOWS]
)
def test_each_servers_overflow_is_recognised_with_what_it_states(
    server, status, body, window, prompt
):
    error = overflow_error(status, body, json.dumps(body))
    assert isinstance(error, LLMContextOverflow)
    assert (error.window, error.prompt_tokens) == (window, prompt)
    assert not error.retryable, "the same request would fail the same way"


@pytest.mark.parametrize(("status", "body"), NOT_OVERFLOWS)
def test_other_errors_are_not_overflows(status, body):
    text = body if isinstance(body, str) else json.dumps(body)
    assert overflow_error(status, body if isinstance(body, dict) else None, text) is None


def test_origin_is_the_server_root_beside_v1():
    assert origin("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080"
    assert origin("http://localhost:11434/v1/") == "http://localhost:11434"
    assert origin("https://openrouter.ai/api/v1") == "https://openrouter.ai/api"


@pytest.mark.parametrize("server", ["openai", "llama.cpp", "vllm", "vllm-legacy"])
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_the_client_raises_an_overflow_and_keeps_the_circuit_closed(fake_llm, server, stream):
    fake_llm.context = ContextWindow(60, server)
    client = LLMClient(fake_llm.base_url, None, LlmSettings(max_tokens=20, circuit_failures=1))
    messages = [{"role": "user", "content": "word " * 200}]

    async def on_text(_: str) -> None:
        raise AssertionError("nothing may be streamed from a refused request")

    try:
        with pytest.raises(LLMContextOverflow) as caught:
            await client.complete(messages, on_text=on_text if stream else None)
        assert caught.value.window == 60
        assert not client.breaker.is_open, "a request too long is not the API failing"
        assert len(fake_llm.requests) == 1, "not retried as it stands"
        answer = await client.complete([{"role": "user", "content": "hi"}])
        assert answer.text
    finally:
        await client.aclose()


async def test_the_doubles_window_can_be_set_over_its_control_api(fake_llm):
    """For the double run as a process (benchmarks): the same window, set over HTTP."""
    async with httpx.AsyncClient() as http:
        await http.post(f"{fake_llm.url}/_control/context", json={"tokens": 777, "server": "vllm"})
        models = (await http.get(f"{fake_llm.base_url}/models")).json()["data"]
        assert {m["max_model_len"] for m in models} == {777}
        assert (await http.get(f"{fake_llm.url}/props")).status_code == 404, "vLLM has no /props"
        await http.post(f"{fake_llm.url}/_control/context", json={})
        assert fake_llm.context is None
