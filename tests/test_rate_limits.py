"""The bot-wide sending limit: adaptive by default, always on when configured."""

from __future__ import annotations

import pytest


def _set(config, key: str, value: str) -> None:
    bot_yaml = config / "bot.yaml"
    text = bot_yaml.read_text()
    lines = [
        f"  {key}: {value}" if line.strip().startswith(f"{key}:") else line
        for line in text.splitlines()
    ]
    bot_yaml.write_text("\n".join(lines) + "\n")


async def _burst(fake_telegram, customers: int) -> None:
    for chat_id in range(5000, 5000 + customers):
        fake_telegram.user_text(chat_id, "How long does a refund take?")
    await fake_telegram.wait_for(
        lambda: all(
            len(fake_telegram.sent_messages(c)) == 1 for c in range(5000, 5000 + customers)
        ),
        timeout=30,
    )


async def test_always_keeps_every_second_under_telegrams_limit(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    _set(knowledge_dirs[0], "overall_limit", "always")
    fake_telegram.enforce_limits = True
    await start_bot(make_settings(fake_telegram))
    await _burst(fake_telegram, 70)
    assert fake_telegram.too_many_requests == 0


async def test_adaptive_slows_down_after_the_first_429_and_delivers_everything(
    fake_telegram, make_settings, start_bot
):
    fake_telegram.enforce_limits = True
    bot = await start_bot(make_settings(fake_telegram))
    limiter = bot.app.bot.rate_limiter
    assert not limiter.limiting_overall
    await _burst(fake_telegram, 70)
    assert limiter.limiting_overall, "a 429 did not switch the bot-wide limit on"
    first_burst_429s = fake_telegram.too_many_requests
    assert first_burst_429s > 0
    for chat_id in range(5000, 5070):
        fake_telegram.user_text(chat_id, "How long does a refund take?")
    await fake_telegram.wait_for(
        lambda: all(len(fake_telegram.sent_messages(c)) == 2 for c in range(5000, 5070)),
        timeout=30,
    )
    assert fake_telegram.too_many_requests == first_burst_429s, "429s after the limit was on"


@pytest.mark.parametrize("mode", ["adaptive", '"off"'])
async def test_without_telegram_pushing_back_a_burst_is_not_throttled(
    mode, fake_telegram, make_settings, start_bot, knowledge_dirs
):
    _set(knowledge_dirs[0], "overall_limit", mode)
    bot = await start_bot(make_settings(fake_telegram))
    await _burst(fake_telegram, 70)
    assert not bot.app.bot.rate_limiter.limiting_overall
