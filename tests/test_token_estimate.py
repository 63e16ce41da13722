"""The token estimate against the counts of SmolLM2's real tokenizer.

The counts were taken from llama.cpp's ``/tokenize`` for the same texts;
``tests/test_llama_cpp.py`` checks them against the live server.
"""

from __future__ import annotations

import pytest

from bot.prompt import ESCALATE_TOOL
from bot.token_estimate import estimate_messages, estimate_tokens, least_tokens

# Texts and the tokens SmolLM2-135M-Instruct's tokenizer counts for them (llama.cpp /tokenize).
MEASURED = [
    (
        "Hello! I ordered a blue kettle last Tuesday and it still has not arrived. Could you "
        "tell me where my parcel is and when I can expect it?",
        31,
    ),
    ("order #A-20391, SKU kt-blue-17, tracking 1Z999AA10123456784, total $49.99", 47),
    ("THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG WHILE CUSTOMER SUPPORT", 27),
    (
        "你好！我上周二订购了一个蓝色的水壶，但是到现在还没有收到。你能告诉我包裹在哪里，什么时候能到吗？",
        84,
    ),
    (
        "Здравствуйте! Я заказал синий чайник в прошлый вторник, и он до сих пор не пришёл. "
        "Подскажите, где моя посылка и когда её ждать?",
        100,
    ),
    ("ЗДРАВСТВУЙТЕ Я ЗАКАЗАЛ СИНИЙ ЧАЙНИК В ПРОШЛЫЙ ВТОРНИК", 89),
    (
        "Добрий день! Я замовив синій чайник минулого вівторка, і він досі не прийшов. "
        "Підкажіть, де моя посилка і коли її чекати?",
        98,
    ),
    (
        "안녕하세요! 지난 화요일에 파란색 주전자를 주문했는데 아직 도착하지 않았어요. 택배가 어디 있나요?",
        123,
    ),
    ("مرحبا! طلبت غلاية زرقاء يوم الثلاثاء الماضي ولم تصل بعد. هل يمكنك إخباري أين طردي؟", 84),
    ("😀😀😀 👍👍 🎉", 18),
]


@pytest.mark.parametrize(("text", "real"), MEASURED, ids=[t[:12] for t, _ in MEASURED])
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
