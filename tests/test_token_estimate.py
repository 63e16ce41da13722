"""The token estimate against the counts of SmolLM2's real tokenizer.

The counts were taken from llama.cpp's ``/tokenize`` for the same texts and are kept
with the real server in ``tests/real_llm.py``; ``tests/test_llama_cpp.py`` checks them
against the live server.
"""

from __future__ import annotations

import pytest

from bot.prompt import ESCALATE_TOOL
from bot.token_estimate import estimate_messages, estimate_tokens, least_tokens
from tests.real_llm import MEASURED_TOKENS


@pytest.mark.parametrize(
    ("text", "real"), MEASURED_TOKENS, ids=[t[:12] for t, _ in MEASURED_TOKENS]
)
def test_estimate_is_above_the_real_tokenizer_and_the_floor_below(text, real):
    assert estimate_tokens(text) > real
    assert least_tokens([{"role": "user", "content": text}]) < real


def test_estimate_grows_with_the_text_and_counts_each_message():
    one = [{"role": "user", "content": "hello there"}]
    two = one + [{"role": "assistant", "content": "hello there"}]
    assert estimate_tokens("") <= 1
    assert estimate_tokens("hello there " * 10) > estimate_tokens("hello there")
    assert estimate_messages(two) > estimate_messages(one) + estimate_tokens("hello there")
    assert estimate_messages(one, [ESCALATE_TOOL]) > estimate_messages(one) + 50
