"""The bot-wide sending limit: adaptive by default, always on when configured."""

from __future__ import annotations

import pytest

from tests.helpers import persona_message, rows, tune


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
    tune(knowledge_dirs[0], overall_limit="always")
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
    tune(knowledge_dirs[0], overall_limit=mode)
    bot = await start_bot(make_settings(fake_telegram))
    await _burst(fake_telegram, 70)
    assert not bot.app.bot.rate_limiter.limiting_overall


# -- the per-customer limit ---------------------------------------------------------------

CHATTY = 5301
STAFF = -1009300
BURST = [
    "Hi",
    "How long do refunds take?",
    "thanks!",
    "ok",
    "Can I pay with PayPal?",
    "👍",
    "hello",
    "got it",
    "bye",
    "How do I create an account?",
    "How do I return an item?",
    "thank you very much",
]


async def test_over_the_limit_nothing_is_dropped_and_a_person_is_not_held_back(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config = knowledge_dirs[0]
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(fake_telegram, STAFF_CHAT_ID=str(STAFF))  # limit: 10 a minute
    bot = await start_bot(settings)
    bot.services.core.rate_limit.window_seconds = (
        20.0  # the minute, shortened (still longer than the test)
    )
    for text in BURST:
        fake_telegram.user_text(CHATTY, text)
    fake_telegram.user_text(CHATTY, "I want to talk to a human")
    # The request for a person is handled at once, while two messages still wait.
    await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF), timeout=19)
    await fake_telegram.wait_for_messages(CHATTY, 12, timeout=19)
    told = fake_telegram.sent_messages(CHATTY)
    notice = persona_message(config, "rate_limited")
    assert told.count(notice) == 1, "told once that answers come in order"
    assert any("#1" in t for t in told), "the handoff was sent"
    assert len(told) == 10 + 2, "ten answers, the notice and the handoff; none invented"

    # The two messages still waiting are part of the ticket: its card shows them, in order.
    card = fake_telegram.bot_messages(STAFF)[0]["text"]
    assert card.index("How do I return an item?") < card.index("thank you very much")
    db = settings.storage.database_path
    stored = rows(db, "SELECT text, ticket_id FROM messages WHERE role = 'customer' ORDER BY id")
    assert [r["text"] for r in stored] == [*BURST, "I want to talk to a human"]
    assert [r["ticket_id"] for r in stored[10:12]] == [1, 1], "put off, then part of the ticket"
    answered = rows(db, "SELECT COUNT(*) FROM messages WHERE role = 'bot'")[0][0]
    assert answered == 11, "ten answers and the handoff, nothing twice (the notice is not kept)"


async def test_over_the_limit_messages_are_answered_in_order_once_the_window_passes(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config = knowledge_dirs[0]
    tune(config, rate_limit_per_minute="3")
    settings = make_settings(fake_telegram)  # FAQ only, no staff desk
    bot = await start_bot(settings)
    bot.services.core.rate_limit.window_seconds = 6.0
    burst = ["Hi", "thanks!", "ok", "How long do refunds take?", "bye"]
    for text in burst:
        fake_telegram.user_text(CHATTY, text)
    told = await fake_telegram.wait_for_messages(CHATTY, 4, timeout=15)
    assert told[3] == persona_message(config, "rate_limited")
    db = settings.storage.database_path
    pending = "SELECT COUNT(*) FROM inbox WHERE status != 'done'"
    # Put off, they stay pending in the inbox: a restart before the window passes
    # answers them instead of losing them.
    customer_rows = "SELECT COUNT(*) FROM messages WHERE role = 'customer'"
    await fake_telegram.wait_for(lambda: rows(db, customer_rows)[0][0] == 5, timeout=5)
    # All five were taken up (each is stored first); once none is being handled, their
    # handlers are over, well inside the six-second window.
    processor = bot.app.update_processor
    await fake_telegram.wait_for(lambda: processor.current_concurrent_updates == 0, timeout=5)
    assert rows(db, pending)[0][0] == 2
    told = await fake_telegram.wait_for_messages(CHATTY, 6, timeout=20)
    assert "refund" in told[4].lower(), "answered later, in order"
    assert told[5] == persona_message(config, "small_talk_farewell")
    await fake_telegram.wait_for(lambda: rows(db, pending)[0][0] == 0, timeout=5)
    assert rows(db, "SELECT COUNT(*) FROM tickets")[0][0] == 0
    assert rows(db, "SELECT COUNT(*) FROM messages WHERE role = 'customer'")[0][0] == 5
