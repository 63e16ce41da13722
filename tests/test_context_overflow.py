"""Long conversations on small context windows, end to end through python-telegram-bot.

The LLM double is given a window and answers as a given kind of server does
(reports its size or not, refuses oversized requests with that server's error,
or, like Ollama, cuts them silently); the customer must keep getting answers,
with no ticket and no error text, and the trims must show in the log and in
``/metrics``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bot.prompt import ESCALATE_TOOL
from bot.token_estimate import estimate_messages
from tests.fakes.llm_context import ContextWindow, prompt_tokens
from tests.helpers import http_env, scrape, tickets, tune, value

CUSTOMER = 5101
WINDOW = 3000
MAX_TOKENS = 100


def long_message(i: int) -> str:
    """A different question each time (the same one thrice would hand over to a person)."""
    return f"Question {i}: my order number {1000 + i}" + " has not arrived and I wonder why" * 36


async def converse(fake_telegram, count: int) -> list[str]:
    texts: list[str] = []
    for i in range(count):
        fake_telegram.user_text(CUSTOMER, long_message(i))
        texts = await fake_telegram.wait_for_messages(CUSTOMER, i + 1, timeout=15)
    return texts


def small_window_settings(make_settings, knowledge_dirs, fake_telegram, fake_llm, **bot_yaml):
    config, _ = knowledge_dirs
    tune(config, max_tokens=str(MAX_TOKENS), rate_limit_per_minute="100", **bot_yaml)
    return make_settings(fake_telegram, fake_llm, **http_env())


def refused(fake_llm) -> int:
    """Requests the double refused as too long for its window."""
    window = fake_llm.context
    return sum(1 for r in fake_llm.requests if window.refusal(r) is not None)


async def test_a_long_conversation_on_a_small_window_keeps_being_answered(
    fake_telegram,
    fake_llm,
    make_settings,
    knowledge_dirs,
    start_bot,
    caplog,
):
    fake_llm.context = ContextWindow(WINDOW, "llama.cpp")  # says its size at /props
    settings = small_window_settings(make_settings, knowledge_dirs, fake_telegram, fake_llm)
    bot = await start_bot(settings, serve_http=True)
    caplog.set_level(logging.INFO, "bot.context_budget")

    texts = await converse(fake_telegram, 5)

    assert texts == [f"Answer to: {long_message(i)}" for i in range(5)]
    assert tickets(Path(settings.storage.database_path)) == []
    assert refused(fake_llm) == 0, "every request was fitted before it was sent"
    for request in fake_llm.requests:
        assert estimate_messages(request["messages"], [ESCALATE_TOOL]) <= WINDOW - MAX_TOKENS
        assert request["messages"][0]["role"] == "system"
    last = fake_llm.last_request["messages"]
    assert last[-1]["content"] == long_message(4), "the customer's message always goes"
    assert len(last) < 2 * 5, "the oldest turns were left out"
    trimmed = [r.getMessage() for r in caplog.records if "prompt trimmed" in r.getMessage()]
    assert trimmed and all("has not arrived" not in m for m in trimmed)
    metrics = await scrape(bot)
    assert value(metrics, "support_bot_prompt_trims_total", kind="history") == len(trimmed)
    assert value(metrics, "support_bot_prompt_trims_total", kind="overflow_retry") == 0


async def test_an_overflow_error_is_retried_once_smaller_and_answered(
    fake_telegram,
    fake_llm,
    make_settings,
    knowledge_dirs,
    start_bot,
    caplog,
):
    # vLLM with its window unreported: the first request that does not fit is refused.
    fake_llm.context = ContextWindow(2600, "vllm", reported=False)
    settings = small_window_settings(make_settings, knowledge_dirs, fake_telegram, fake_llm)
    bot = await start_bot(settings, serve_http=True)

    texts = await converse(fake_telegram, 5)

    assert texts == [f"Answer to: {long_message(i)}" for i in range(5)], "no error text"
    assert tickets(Path(settings.storage.database_path)) == []
    assert refused(fake_llm) == 1, "the window is learned from the first refusal"
    first = next(i for i, r in enumerate(fake_llm.requests) if fake_llm.context.refusal(r))
    retry = fake_llm.requests[first + 1]
    assert retry["messages"][-1] == fake_llm.requests[first]["messages"][-1]
    assert prompt_tokens(retry) < prompt_tokens(fake_llm.requests[first])
    assert len(fake_llm.requests) == 5 + 1
    metrics = await scrape(bot)
    assert value(metrics, "support_bot_prompt_trims_total", kind="overflow_retry") == 1
    assert value(metrics, "support_bot_llm_errors_total", kind="context_overflow") == 1
    warned = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(warned) == 1 and "has not arrived" not in warned[0]


async def test_the_configured_window_is_used_when_the_server_tells_none(
    fake_telegram,
    fake_llm,
    make_settings,
    knowledge_dirs,
    start_bot,
):
    fake_llm.context = ContextWindow(WINDOW, "openai")  # OpenAI reports no window
    settings = small_window_settings(
        make_settings, knowledge_dirs, fake_telegram, fake_llm, context_tokens=str(WINDOW)
    )
    await start_bot(settings, serve_http=True)
    texts = await converse(fake_telegram, 5)
    assert len(texts) == 5
    assert refused(fake_llm) == 0
    assert len(fake_llm.requests) == 5


async def test_a_prompt_ollama_cut_silently_is_detected_and_reported_once(
    fake_telegram,
    fake_llm,
    make_settings,
    knowledge_dirs,
    start_bot,
    caplog,
):
    # /api/show gives the model's trained length, but the server runs a smaller num_ctx.
    fake_llm.context = ContextWindow(600, "ollama", ollama_num_ctx_set=False)
    settings = small_window_settings(make_settings, knowledge_dirs, fake_telegram, fake_llm)
    bot = await start_bot(settings, serve_http=True)

    texts = await converse(fake_telegram, 3)

    assert len(texts) == 3
    metrics = await scrape(bot)
    assert value(metrics, "support_bot_prompt_cut_by_server_total") >= 2
    warnings = [r.getMessage() for r in caplog.records if "OLLAMA_CONTEXT_LENGTH" in r.getMessage()]
    assert len(warnings) == 1, "warned once, counted every time"
    assert "num_ctx" in warnings[0] and "has not arrived" not in warnings[0]
