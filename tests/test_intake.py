"""A burst larger than the bot takes in at once: held back at Telegram, then answered in full."""

from __future__ import annotations

import asyncio

from bot.telegram import intake
from bot.telegram.app import TelegramBot
from bot.telegram.intake import IntakeQueue
from tests.helpers import rows, tune


async def test_the_queue_hands_out_no_more_than_its_room():
    queue = IntakeQueue(in_flight=2, maxsize=2)
    taken: list[int] = []

    async def consume() -> None:
        while True:
            taken.append(await queue.get())

    consumer = asyncio.create_task(consume())
    try:
        for n in range(4):
            await queue.put(n)
        await asyncio.sleep(0.01)
        assert taken == [0, 1]  # two in flight; two more wait in the queue
        # The queue is full: one more put has to wait until room is made.
        blocked = asyncio.create_task(queue.put(4))
        await asyncio.sleep(0.01)
        assert not blocked.done()
        queue.task_done()  # the first update was handled
        await asyncio.wait_for(blocked, 1)
        await asyncio.sleep(0.01)
        assert taken == [0, 1, 2]
        for _ in range(4):
            queue.task_done()
        await asyncio.sleep(0.01)
        assert taken == [0, 1, 2, 3, 4]  # in the order Telegram sent them
        assert queue.peak == 2
    finally:
        consumer.cancel()


async def test_a_burst_beyond_the_limit_is_answered_in_full_and_in_order(
    fake_telegram, fake_llm, make_settings, start_bot, monkeypatch
):
    monkeypatch.setattr(intake, "IN_FLIGHT", 8)
    monkeypatch.setattr(intake, "WAITING", 4)
    bot = await start_bot(make_settings(fake_telegram, fake_llm))
    chats = [7000 + n for n in range(40)]
    for chat in chats:
        fake_telegram.user_text(chat, f"First question from {chat}?")
        fake_telegram.user_text(chat, f"Second question from {chat}?")
    await fake_telegram.wait_for(
        lambda: all(len(fake_telegram.sent_messages(c)) == 2 for c in chats), timeout=60
    )
    for chat in chats:
        assert fake_telegram.sent_messages(chat) == [
            f"Answer to: First question from {chat}?",
            f"Answer to: Second question from {chat}?",
        ]
    queue = bot.app.update_queue
    assert isinstance(queue, IntakeQueue)
    assert queue.peak == 8  # the limit was reached, and never passed


async def test_one_at_a_time_still_answers_every_chat(
    fake_telegram, fake_llm, make_settings, start_bot, monkeypatch
):
    """The tightest room: a chat waiting for its turn must never block the queue for good."""
    monkeypatch.setattr(intake, "IN_FLIGHT", 1)
    await start_bot(make_settings(fake_telegram, fake_llm))
    for n in range(3):
        fake_telegram.user_text(8000, f"Question {n}?")
        fake_telegram.user_text(8001, f"Question {n}?")
    for chat in (8000, 8001):
        texts = await fake_telegram.wait_for_messages(chat, 3, timeout=30)
        assert texts == [f"Answer to: Question {n}?" for n in range(3)]


async def test_updates_held_in_the_queue_at_stop_are_answered_after_restart(
    fake_telegram, fake_llm, make_settings, knowledge_dirs, monkeypatch, recwarn
):
    """Telegram counts every update the poller took as delivered, queued ones included."""
    monkeypatch.setattr(intake, "IN_FLIGHT", 2)
    monkeypatch.setattr(intake, "WAITING", 3)
    tune(knowledge_dirs[0], shutdown_grace_seconds="0.3")
    settings = make_settings(fake_telegram, fake_llm)
    fake_llm.delay = 30  # nothing is answered before the stop
    chats = [9000 + n for n in range(12)]
    bot = TelegramBot(settings)
    await bot.start()
    try:
        for chat in chats:
            fake_telegram.user_text(chat, f"Question from {chat}?")
        await fake_llm.wait_for(lambda: fake_llm.in_flight == 2, 10)
        await fake_telegram.wait_for(lambda: bot.app.update_queue.full(), 10)
    finally:
        await bot.stop()
    assert not any(fake_telegram.sent_messages(c) for c in chats)
    # A queued update handed to a handler after the application stopped would run in a
    # task nobody waits for, which python-telegram-bot warns about.
    assert not [w for w in recwarn if "create_task" in str(w.message)]
    # Each message is stored by the bot or still waiting at Telegram (or both): none is lost.
    db = settings.storage.database_path
    stored = {int(row["chat_key"]) for row in rows(db, "SELECT chat_key FROM inbox")}
    at_telegram = {u["message"]["chat"]["id"] for u in fake_telegram.pending_updates}
    assert stored | at_telegram == set(chats)
    assert len(stored) >= 2 + 3  # those in flight and those queued

    fake_llm.delay = 0
    bot = TelegramBot(settings)
    await bot.start()
    try:
        await fake_telegram.wait_for(
            lambda: all(fake_telegram.sent_messages(c) for c in chats), timeout=30
        )
    finally:
        await bot.stop()
    for chat in chats:
        assert fake_telegram.sent_messages(chat) == [f"Answer to: Question from {chat}?"]
