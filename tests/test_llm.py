"""bot/llm.py's LLMClient through its public API, against the LLM double over real HTTP.

What a provider does (an answer, a stream, a tool call, an error status, a Retry-After,
silence, a broken body) is scripted on the double; the client must turn each into a
Completion or into the one LLMError that tells the caller whether to try again. What
the bot then tells the customer is tests/test_faults.py's; overflow errors are
tests/test_context_window.py's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from bot.completion import ToolCall
from bot.errors import (
    LLMBadResponse,
    LLMConnectionError,
    LLMContextOverflow,
    LLMHTTPError,
    LLMTimeout,
    LLMUnavailable,
)
from bot.llm import LLMClient
from bot.prompt import ESCALATE_TOOL
from bot.settings import LlmSettings
from tests.fakes import FakeLLM, Reply

KEY = "sk-test-llm-client"
QUESTION = [
    {"role": "system", "content": "You are the shop's assistant."},
    {"role": "user", "content": "How long does delivery take?"},
]
STREAM = pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])


@pytest.fixture
async def client(fake_llm: FakeLLM) -> AsyncIterator[Callable[..., LLMClient]]:
    """Clients of the double with the given LlmSettings fields; closed after the test."""
    made: list[LLMClient] = []

    def make(**settings: object) -> LLMClient:
        made.append(LLMClient(fake_llm.base_url, KEY, LlmSettings(**settings)))
        return made[-1]

    yield make
    for each in made:
        await each.aclose()


class Pieces:
    """An ``on_text`` callback that keeps every streamed piece."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, piece: str) -> None:
        self.seen.append(piece)


# ---------------------------------------------------------------- answers


async def test_a_completion_is_the_answer_with_its_usage(fake_llm, client):
    fake_llm.script(Reply.text("Parcels arrive in three to five days."))
    llm = client(model="shop-model", temperature=0.1, max_tokens=77)
    answer = await llm.complete(QUESTION)
    assert answer.text == "Parcels arrive in three to five days."
    assert answer.tool_calls == ()
    assert answer.finish_reason == "stop"
    assert answer.model == "shop-model"
    assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
    sent = fake_llm.last_request
    assert sent["messages"] == QUESTION
    assert (sent["model"], sent["temperature"], sent["max_tokens"]) == ("shop-model", 0.1, 77)
    assert "stream" not in sent and "tools" not in sent
    assert fake_llm.headers[-1]["Authorization"] == f"Bearer {KEY}"


async def test_a_stream_arrives_in_pieces_that_make_the_whole_answer(fake_llm, client):
    text = "Parcels arrive in three to five working days, tracked all the way."
    fake_llm.script(Reply.text(text, chunks=5, keep_alive=True))  # with ": keep-alive" lines
    pieces = Pieces()
    answer = await client().complete(QUESTION, on_text=pieces)
    assert len(pieces.seen) == 5 and "".join(pieces.seen) == text
    assert answer.text == text and answer.finish_reason == "stop"
    assert answer.completion_tokens > 0, "usage from the stream's last chunk"
    sent = fake_llm.last_request
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


@STREAM
async def test_a_tool_call_comes_back_with_its_arguments(fake_llm, client, stream):
    arguments = {"reason": "The customer asks for a refund of a broken kettle."}
    fake_llm.script(Reply.tool_call(ESCALATE_TOOL["function"]["name"], arguments, chunks=4))
    pieces = Pieces()
    answer = await client().complete(
        QUESTION, tools=[ESCALATE_TOOL], on_text=pieces if stream else None
    )
    assert answer.tool_calls == (ToolCall(ESCALATE_TOOL["function"]["name"], arguments),)
    assert answer.finish_reason == "tool_calls"
    assert pieces.seen == [], "a call is not text for the customer"
    sent = fake_llm.last_request
    assert sent["tools"] == [ESCALATE_TOOL] and sent["tool_choice"] == "auto"


async def test_tool_arguments_that_are_not_json_come_back_empty(fake_llm, client):
    fake_llm.script(Reply.tool_call("escalate", '{"reason": "cut sh', chunks=1))
    answer = await client().complete(QUESTION, tools=[ESCALATE_TOOL])
    assert answer.tool_calls == (ToolCall("escalate", {}),)


async def test_calls_in_flight_stay_within_the_limit(fake_llm, client):
    fake_llm.delay = 0.2
    llm = client(max_concurrent_requests=2)
    answers = await asyncio.gather(*(llm.complete(QUESTION) for _ in range(5)))
    assert len(answers) == 5 and fake_llm.max_in_flight == 2


# ---------------------------------------------------------------- HTTP errors


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
@STREAM
async def test_a_client_error_is_raised_at_once_and_not_retried(fake_llm, client, status, stream):
    # A 400 that names a value, as OpenAI words it: not to be taken for a context overflow.
    refusal = "Invalid value for 'temperature': must be between 0 and 2."
    fake_llm.script(Reply.http_error(status, refusal, code="invalid_value"))
    with pytest.raises(LLMHTTPError) as caught:
        await client().complete(QUESTION, on_text=Pieces() if stream else None)
    assert caught.value.status == status and not caught.value.retryable
    assert refusal in str(caught.value)
    assert not isinstance(caught.value, LLMContextOverflow)
    assert len(fake_llm.requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@STREAM
async def test_a_server_error_is_retried_until_the_model_answers(fake_llm, client, status, stream):
    fake_llm.script(
        Reply.http_error(status, retry_after=0), Reply.http_error(status, retry_after=0)
    )
    answer = await client().complete(QUESTION, on_text=Pieces() if stream else None)
    assert answer.text == "Answer to: How long does delivery take?"
    assert len(fake_llm.requests) == 3


async def test_server_errors_past_the_retry_budget_are_raised(fake_llm, client):
    fake_llm.responder = lambda request: Reply.http_error(503, "Overloaded")
    started = time.monotonic()
    with pytest.raises(LLMHTTPError) as caught:
        await client(retry_budget_seconds=1.0).complete(QUESTION)
    assert caught.value.status == 503 and caught.value.retryable
    assert len(fake_llm.requests) >= 2, "retried while the budget lasted"
    assert time.monotonic() - started < 1.5, "a retry that would end past the budget is not made"


async def test_a_429_waits_what_retry_after_says(fake_llm, client):
    # Longer than the client's own first backoff (at most 0.625 s): only the header explains it.
    fake_llm.script(Reply.rate_limited(retry_after=0.8))
    started = time.monotonic()
    answer = await client().complete(QUESTION)
    assert time.monotonic() - started >= 0.8
    assert answer.text and len(fake_llm.requests) == 2


async def test_a_429_waits_what_retry_after_ms_says(fake_llm, client):
    fake_llm.script(Reply.rate_limited(retry_after=None, retry_after_ms=700))
    started = time.monotonic()
    answer = await client().complete(QUESTION, on_text=Pieces())
    assert time.monotonic() - started >= 0.7
    assert answer.text and len(fake_llm.requests) == 2


async def test_a_429_asking_for_longer_than_the_budget_is_raised_without_waiting(fake_llm, client):
    fake_llm.script(Reply.rate_limited(retry_after=30))
    started = time.monotonic()
    with pytest.raises(LLMHTTPError) as caught:
        await client(retry_budget_seconds=5.0).complete(QUESTION)
    assert caught.value.status == 429 and caught.value.retry_after == 30
    assert time.monotonic() - started < 2.0
    assert len(fake_llm.requests) == 1


# ---------------------------------------------------------------- timeouts


@STREAM
async def test_a_model_that_never_answers_times_out(fake_llm, client, stream):
    fake_llm.responder = lambda request: Reply.hang()
    started = time.monotonic()
    with pytest.raises(LLMTimeout):
        await client(read_timeout_seconds=0.2, retry_budget_seconds=1.0).complete(
            QUESTION, on_text=Pieces() if stream else None
        )
    assert len(fake_llm.requests) >= 2, "a timeout is worth another try within the budget"
    assert time.monotonic() - started < 3.0


async def test_a_stream_that_stalls_after_its_first_words_is_not_retried(fake_llm, client):
    fake_llm.script(Reply.stall(after_chunks=3))
    pieces = Pieces()
    with pytest.raises(LLMTimeout) as caught:
        await client(read_timeout_seconds=0.3).complete(QUESTION, on_text=pieces)
    assert pieces.seen, "the first words were shown"
    assert caught.value.partial, "what was shown would be shown twice"
    assert len(fake_llm.requests) == 1


# ---------------------------------------------------------------- broken answers


@pytest.mark.parametrize(
    "broken",
    [Reply.malformed_json(), Reply.no_choices(), Reply.text("   ")],
    ids=["malformed", "no-choices", "blank"],
)
@STREAM
async def test_a_broken_answer_is_retried_as_a_failure(fake_llm, client, broken, stream):
    fake_llm.script(broken)
    answer = await client().complete(QUESTION, on_text=Pieces() if stream else None)
    assert answer.text == "Answer to: How long does delivery take?"
    assert len(fake_llm.requests) == 2


@pytest.mark.parametrize(
    "broken",
    [Reply.malformed_json(), Reply.no_choices(), Reply.text("   ")],
    ids=["malformed", "no-choices", "blank"],
)
async def test_answers_that_stay_broken_are_raised_as_bad_responses(fake_llm, client, broken):
    fake_llm.responder = lambda request: broken
    with pytest.raises(LLMBadResponse):
        await client(retry_budget_seconds=0.3).complete(QUESTION)


async def test_an_error_in_the_middle_of_a_stream_is_raised_without_a_retry(fake_llm, client):
    fake_llm.script(Reply.mid_stream_error("Upstream provider error", after=3))
    pieces = Pieces()
    with pytest.raises(LLMBadResponse, match="Upstream provider error") as caught:
        await client().complete(QUESTION, on_text=pieces)
    assert pieces.seen and caught.value.partial
    assert len(fake_llm.requests) == 1


async def test_a_stream_cut_before_its_end_is_a_connection_error(fake_llm, client):
    fake_llm.script(Reply.cut(after_chunks=3))
    pieces = Pieces()
    with pytest.raises(LLMConnectionError) as caught:
        await client().complete(QUESTION, on_text=pieces)
    assert pieces.seen and caught.value.partial
    assert len(fake_llm.requests) == 1


async def test_a_cut_before_any_text_is_tried_again(fake_llm, client):
    fake_llm.script(Reply.cut(after_chunks=1))  # only the role chunk came through
    pieces = Pieces()
    answer = await client().complete(QUESTION, on_text=pieces)
    assert "".join(pieces.seen) == answer.text == "Answer to: How long does delivery take?"
    assert len(fake_llm.requests) == 2


# ---------------------------------------------------------------- the circuit breaker


async def test_the_breaker_opens_after_failures_and_lets_one_probe_through_later(fake_llm, client):
    llm = client(circuit_failures=2, circuit_cooldown_seconds=0.3)
    fake_llm.script(Reply.http_error(400), Reply.http_error(400))
    for _ in range(2):
        with pytest.raises(LLMHTTPError):
            await llm.complete(QUESTION)
    assert llm.breaker.is_open
    with pytest.raises(LLMUnavailable):
        await llm.complete(QUESTION)
    assert len(fake_llm.requests) == 2, "an open breaker spares the API"
    await asyncio.sleep(0.3)  # the cooldown itself is what the breaker waits for
    assert (await llm.complete(QUESTION)).text, "the probe after the cooldown goes through"
    assert not llm.breaker.is_open and len(fake_llm.requests) == 3
