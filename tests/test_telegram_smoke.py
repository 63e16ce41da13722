"""A first end-to-end pass through python-telegram-bot, the fakes and the core."""

from __future__ import annotations


async def test_start_and_llm_answer(fake_telegram, fake_llm, make_settings, start_bot):
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(1001, "/start")
    greeting = await fake_telegram.wait_for_messages(1001, 1)
    assert "Nora" in greeting[0]
    fake_telegram.user_text(1001, "How long does a refund take?")
    texts = await fake_telegram.wait_for_messages(1001, 2)
    assert texts[1] == "Answer to: How long does a refund take?"
    system = fake_llm.last_request["messages"][0]["content"]
    assert "Nora" in system and 'faq id="refund_time"' in system
