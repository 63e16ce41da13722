"""Fitting requests into a context window, and learning the window from each kind of server.

``fit`` is checked on requests built from the shipped persona and FAQ;
``ContextBudget`` is driven over HTTP against the LLM double, given the window,
the endpoints and the error bodies of each kind of server.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.context_budget import ContextBudget, PromptParts, fit
from bot.errors import LLMContextOverflow
from bot.knowledge.live import load_knowledge
from bot.llm import LLMClient
from bot.metrics import BotMetrics
from bot.prompt import ESCALATE_TOOL, Turn
from bot.settings import LlmSettings
from bot.token_estimate import estimate_messages
from tests.fakes import FakeLLM
from tests.fakes.llm_context import ContextWindow

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def knowledge():
    return load_knowledge(REPO / "config", REPO / "faq")


def parts(knowledge, history: list[Turn], text: str = "How long does a refund take?", **kw):
    values = dict(history_messages=50, history_chars=100_000, tools=True, marker="[[HANDOFF]]")
    values.update(kw)
    snippets = tuple(knowledge.search(text, 3))
    return PromptParts(knowledge.persona, snippets, history, text, **values)


def conversation(turns: int, words: int = 60) -> list[Turn]:
    return [
        Turn("customer" if i % 2 == 0 else "bot", f"turn {i} " + "lorem ipsum " * words)
        for i in range(turns)
    ]


# -- fitting ---------------------------------------------------------------------------


def test_a_request_that_fits_or_has_no_window_is_left_whole(knowledge):
    request = parts(knowledge, conversation(6))
    assert fit(request, None).messages == request.messages()
    whole = fit(request, 100_000)
    assert whole.messages == request.messages()
    assert (whole.dropped_history, whole.dropped_faq) == (0, 0)
    assert whole.estimate == estimate_messages(request.messages())


def test_oldest_turns_go_first_and_persona_and_question_stay(knowledge):
    request = parts(knowledge, conversation(12))
    full = request.messages()
    budget = estimate_messages(full) - 300
    fitted = fit(request, budget)
    assert fitted.estimate <= budget
    assert 0 < fitted.dropped_history < 12 and fitted.dropped_faq == 0
    assert fitted.messages[0] == full[0], "the persona and FAQ must stay"
    assert fitted.messages[-1] == full[-1], "the customer's message must stay"
    kept = fitted.messages[1:-1]
    assert kept == full[1 + fitted.dropped_history : -1], "only the oldest turns go"
    assert kept[0]["role"] == "user", "an answer must not be left without its question"


def test_faq_snippets_go_after_the_history_lowest_ranked_first(knowledge):
    request = parts(knowledge, conversation(4))
    assert len(request.snippets) == 3
    without_history = estimate_messages([request.messages()[0], request.messages()[-1]])
    fitted = fit(request, without_history - 20)
    assert fitted.dropped_history == 4
    assert 0 < fitted.dropped_faq < 3
    system = fitted.messages[0]["content"]
    kept = 3 - fitted.dropped_faq
    for result in request.snippets[:kept]:
        assert f'faq id="{result.entry.id}"' in system
    for result in request.snippets[kept:]:
        assert f'faq id="{result.entry.id}"' not in system
    assert knowledge.persona.instructions.strip() in system
    assert [m["role"] for m in fitted.messages] == ["system", "user"]


def test_persona_and_question_are_sent_even_when_they_alone_are_too_big(knowledge):
    request = parts(knowledge, conversation(4))
    fitted = fit(request, 10)
    assert [m["role"] for m in fitted.messages] == ["system", "user"]
    assert fitted.messages[-1]["content"] == request.customer_text
    assert knowledge.persona.instructions.strip() in fitted.messages[0]["content"]
    assert fitted.dropped_faq == 3


# -- the budget against a server -------------------------------------------------------


async def budget_for(fake: FakeLLM, configured: int = 0, max_tokens: int = 100):
    settings = LlmSettings(model=fake.model, max_tokens=max_tokens, retry_budget_seconds=0)
    client = LLMClient(fake.base_url, None, settings, observer=BotMetrics())
    return ContextBudget(client, configured)


def trims(budget: ContextBudget, kind: str) -> float:
    return budget.llm.observer.prompt_trims.labels(kind)._value.get()


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (ContextWindow(3000, "llama.cpp"), 3000),
        (ContextWindow(5000, "vllm"), 5000),
        (ContextWindow(2048, "ollama"), 2048),
        (ContextWindow(2048, "ollama", ollama_num_ctx_set=False), 131072),
        (ContextWindow(4000, "openai"), None),
    ],
    ids=["llama.cpp", "vllm", "ollama-num_ctx", "ollama-trained", "openai"],
)
async def test_the_window_is_asked_once_where_each_server_tells_it(fake_llm, window, expected):
    fake_llm.context = window
    budget = await budget_for(fake_llm)
    try:
        assert await budget.known_window() == expected
        fake_llm.context = ContextWindow(999, window.server)
        assert await budget.known_window() == expected, "asked once, then remembered"
    finally:
        await budget.llm.aclose()


async def test_a_configured_window_wins_and_an_unreachable_server_is_asked_again(fake_llm):
    fake_llm.context = ContextWindow(3000, "llama.cpp")
    budget = await budget_for(fake_llm, configured=1500)
    try:
        assert await budget.known_window() == 1500
    finally:
        await budget.llm.aclose()
    down = FakeLLM()
    await down.start()
    port = down.port
    await down.stop()
    budget = await budget_for(FakeLLM(port=port))
    try:
        assert await budget.known_window() is None
        assert not budget._asked, "an unreachable server is asked again later"
        async with FakeLLM(port=port) as back:
            back.context = ContextWindow(4096, "llama.cpp")
            assert await budget.known_window() == 4096
    finally:
        await budget.llm.aclose()


async def test_a_long_conversation_is_trimmed_to_the_reported_window(fake_llm, knowledge, caplog):
    fake_llm.context = ContextWindow(3000, "llama.cpp")
    budget = await budget_for(fake_llm)
    caplog.set_level(logging.INFO, "bot.context_budget")
    try:
        request = parts(knowledge, conversation(20))
        completion, messages = await budget.complete(request, [ESCALATE_TOOL])
    finally:
        await budget.llm.aclose()
    assert completion.text.startswith("Answer to:")
    assert len(fake_llm.requests) == 1, "fitted before sending: no refusal, no retry"
    assert estimate_messages(messages, [ESCALATE_TOOL]) <= 3000 - 100
    assert fake_llm.last_request["messages"] == messages
    assert trims(budget, "history") == 1 and trims(budget, "overflow_retry") == 0
    logged = [r.getMessage() for r in caplog.records if "prompt trimmed" in r.getMessage()]
    assert len(logged) == 1 and "earlier messages" in logged[0]
    assert "lorem" not in logged[0], "customer text stays out of the log"


@pytest.mark.parametrize("server", ["llama.cpp", "vllm", "vllm-legacy", "openai"], ids=lambda s: s)
async def test_an_overflow_is_retried_once_within_the_window_the_error_states(
    fake_llm, knowledge, server
):
    fake_llm.context = ContextWindow(2600, server, reported=False)
    budget = await budget_for(fake_llm)
    try:
        request = parts(knowledge, conversation(20))
        completion, messages = await budget.complete(request, [ESCALATE_TOOL])
        assert budget.window == 2600, "learned from the error text"
    finally:
        await budget.llm.aclose()
    assert completion.text.startswith("Answer to:")
    assert len(fake_llm.requests) == 2
    first, second = fake_llm.requests
    assert len(second["messages"]) < len(first["messages"])
    assert second["messages"] == messages
    assert trims(budget, "overflow_retry") == 1
    assert budget.llm.breaker.failures == 0, "an overflow says nothing about the API's health"


async def test_an_overflow_that_states_no_window_is_retried_at_half_size(fake_llm, knowledge):
    from tests.fakes import Reply

    fake_llm.script(
        Reply.http_error(
            400,
            "Your input exceeds the context window of this model. Please adjust your input "
            "and try again.",
            code="context_length_exceeded",
        )
    )
    budget = await budget_for(fake_llm)
    try:
        request = parts(knowledge, conversation(20))
        await budget.complete(request, None)
    finally:
        await budget.llm.aclose()
    first, second = fake_llm.requests
    sent = estimate_messages(first["messages"]) + 100
    assert estimate_messages(second["messages"]) + 100 <= sent // 2
    assert budget.window == sent // 2


async def test_a_second_overflow_gives_up(fake_llm, knowledge):
    fake_llm.context = ContextWindow(50, "llama.cpp", reported=False)
    budget = await budget_for(fake_llm)
    try:
        with pytest.raises(LLMContextOverflow):
            await budget.complete(parts(knowledge, conversation(4)), None)
    finally:
        await budget.llm.aclose()
    assert len(fake_llm.requests) == 2, "one retry, no more"


async def test_a_prompt_ollama_cut_is_warned_about_once_and_counted(fake_llm, knowledge, caplog):
    # Ollama reports the model's trained window but runs OLLAMA_CONTEXT_LENGTH's.
    fake_llm.context = ContextWindow(400, "ollama", ollama_num_ctx_set=False)
    budget = await budget_for(fake_llm)
    try:
        for _ in range(2):
            await budget.complete(parts(knowledge, conversation(16)), None)
    finally:
        await budget.llm.aclose()
    assert fake_llm.requests[0]["messages"][0]["role"] == "system", "sent whole"
    assert budget.llm.observer.prompt_cuts._value.get() == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    cut = [w for w in warnings if "OLLAMA_CONTEXT_LENGTH" in w]
    assert len(cut) == 1 and "num_ctx" in cut[0]


async def test_an_uncut_prompt_raises_no_warning(fake_llm, knowledge, caplog):
    fake_llm.context = ContextWindow(100_000, "ollama")
    budget = await budget_for(fake_llm)
    try:
        await budget.complete(parts(knowledge, conversation(16)), None)
    finally:
        await budget.llm.aclose()
    assert budget.llm.observer.prompt_cuts._value.get() == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
