"""One retry policy for Bot API calls: a message reaches Telegram at most max_retries times.

The bot runs against the fake Bot API over HTTP; the fake answers 429 with a
retry_after, or drops the connection, as often as the test asks.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

CUSTOMER = 1701


def set_max_retries(config: Path, value: int) -> None:
    path = config / "bot.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines = [f"  max_retries: {value}" if ln.startswith("  max_retries:") else ln for ln in lines]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def retries(bot, reason: str) -> float:
    body = bot.metrics.render()[0].decode()  # what /metrics serves
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if (sample.name, sample.labels) == (
                "support_bot_telegram_retries_total",
                {"reason": reason},
            ):
                return sample.value
    raise AssertionError("support_bot_telegram_retries_total is not in /metrics")


async def answer_attempts(fake_telegram, wanted: int) -> list:
    await fake_telegram.wait_for(
        lambda: len(fake_telegram.calls("sendMessage")) >= wanted, timeout=20
    )
    return fake_telegram.calls("sendMessage")


async def test_a_429_waits_retry_after_and_sends_at_most_max_retries_times(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    set_max_retries(knowledge_dirs[0], 3)
    fake_telegram.fail_when(
        lambda method, params: method == "sendMessage" and params["chat_id"] == CUSTOMER,
        429,
        retry_after=1,
    )
    bot = await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "Where is my parcel?")
    calls = await answer_attempts(fake_telegram, 3)
    # The next update is handled after this one gave up: nothing more was sent for it.
    fake_telegram.user_text(CUSTOMER + 1, "Where is my parcel?")
    await fake_telegram.wait_for_messages(CUSTOMER + 1, 1, timeout=20)
    calls = [c for c in fake_telegram.calls("sendMessage") if c.params["chat_id"] == CUSTOMER]
    assert [c.status for c in calls] == [429, 429, 429]
    gaps = [later.at - earlier.at for earlier, later in zip(calls, calls[1:], strict=False)]
    assert all(0.95 <= gap < 2.5 for gap in gaps), gaps  # retry_after, and not much more
    assert retries(bot, "rate_limited") == 2
    assert retries(bot, "network") == 0


async def test_network_errors_back_off_within_the_same_bound(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    set_max_retries(knowledge_dirs[0], 4)
    fake_telegram.fail_next("sendMessage", 0, count=3)  # the connection drops three times
    bot = await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "Where is my parcel?")
    told = await fake_telegram.wait_for_messages(CUSTOMER, 1, timeout=20)
    assert told == ["Answer to: Where is my parcel?"]
    calls = fake_telegram.calls("sendMessage")
    assert len(calls) == 4
    gaps = [later.at - earlier.at for earlier, later in zip(calls, calls[1:], strict=False)]
    assert gaps[1] > gaps[0] and gaps[2] > gaps[1], f"no backoff: {gaps}"
    assert retries(bot, "network") == 3
    assert retries(bot, "rate_limited") == 0


async def test_max_retries_must_be_at_least_one(knowledge_dirs):
    from bot.config_check import check

    config, faq = knowledge_dirs
    set_max_retries(config, 0)
    problems = [str(p) for p in check(config, faq, {})]
    assert any("bot.yaml" in p and "max_retries" in p for p in problems), problems
