"""Webhook mode end to end: the Bot API double POSTs updates to the bot's own HTTP server.

Nothing is called in-process: updates travel as Telegram sends them (JSON over HTTP with
the secret token header), replies go back through python-telegram-bot to the double.
"""

from __future__ import annotations

import sqlite3

import aiohttp
import pytest

from bot.telegram.app import TelegramBot
from tests.helpers import free_port, values

SECRET = "webhook-secret_0123456789"


PUBLIC = "https://bot.example.test"


def local_url(settings) -> str:
    """Where the reverse proxy in front of the bot would forward WEBHOOK_URL to."""
    path = settings.env.webhook_url.removeprefix(PUBLIC)
    return f"http://127.0.0.1:{settings.env.http_port}{path}"


@pytest.fixture
def webhook_settings(make_settings, fake_telegram, fake_llm):
    def build(secret: str | None = SECRET, path: str = "/telegram/hook"):
        extra = {
            "WEBHOOK_URL": f"{PUBLIC}{path}",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
        }
        if secret is not None:
            extra["WEBHOOK_SECRET"] = secret
        return make_settings(fake_telegram, fake_llm, **extra)

    return build


@pytest.fixture
def start_webhook_bot(start_bot, fake_telegram):
    """Start a bot in webhook mode and point the double's deliveries at it, as a proxy would."""

    async def start(settings) -> TelegramBot:
        bot = await start_bot(settings)
        fake_telegram.deliver_to_webhook(local_url(settings))
        return bot

    return start


def forged_update(update_id: int, chat_id: int, text: str) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 77,
            "date": 1_700_000_000,
            "chat": {"id": chat_id, "type": "private", "first_name": "Eve"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Eve"},
            "text": text,
        },
    }


async def test_webhook_registered_and_updates_answered(
    fake_telegram, fake_llm, webhook_settings, start_webhook_bot, tmp_path
):
    settings = webhook_settings()
    await start_webhook_bot(settings)
    registered = fake_telegram.calls("setWebhook")[-1].params
    assert registered["url"] == settings.env.webhook_url
    assert registered["secret_token"] == SECRET
    assert not registered.get("drop_pending_updates")
    fake_telegram.user_text(1001, "/start")
    fake_telegram.user_text(1001, "How long does a refund take?")
    texts = await fake_telegram.wait_for_messages(1001, 2)
    assert "Nora" in texts[0]
    assert texts[1] == "Answer to: How long does a refund take?"
    # Delivered by POST, never fetched: the webhook is the only door.
    assert fake_telegram.calls("getUpdates") == []
    assert {d["status"] for d in fake_telegram.webhook_deliveries} == {200}
    # The durable inbox saw both updates and marked them done, as in polling mode.
    statuses = values(tmp_path / "bot.sqlite3", "SELECT status FROM inbox ORDER BY update_id")
    await fake_telegram.wait_for(
        lambda: (
            values(tmp_path / "bot.sqlite3", "SELECT COUNT(*) FROM inbox WHERE status='done'")[0][0]
            == 2
        )
    )
    assert len(statuses) == 2


async def test_messages_of_one_chat_answered_in_order(
    fake_telegram, fake_llm, webhook_settings, start_webhook_bot
):
    await start_webhook_bot(webhook_settings())
    questions = [f"Question number {n} about my order?" for n in range(5)]
    for question in questions:
        fake_telegram.user_text(1001, question)
    fake_telegram.user_text(1002, "Where is my parcel?")
    texts = await fake_telegram.wait_for_messages(1001, 5)
    assert texts == [f"Answer to: {q}" for q in questions]
    assert await fake_telegram.wait_for_messages(1002, 1) == ["Answer to: Where is my parcel?"]


@pytest.mark.parametrize("header", [None, "wrong-secret"])
async def test_wrong_or_missing_secret_is_refused(
    fake_telegram, fake_llm, webhook_settings, start_webhook_bot, tmp_path, header
):
    settings = webhook_settings()
    await start_webhook_bot(settings)
    headers = {} if header is None else {"X-Telegram-Bot-Api-Secret-Token": header}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            local_url(settings),
            json=forged_update(900_001, 2002, "forged hello"),
            headers=headers,
        ) as response,
    ):
        assert response.status == 403
    # A real message from the same chat afterwards is the only one answered.
    fake_telegram.user_text(2002, "/help")
    texts = await fake_telegram.wait_for_messages(2002, 1)
    assert len(texts) == 1 and "/reset" in texts[0]
    assert not any(
        "forged" in m.get("content", "")
        for r in fake_llm.requests
        for m in r.get("messages", [])
        if isinstance(m.get("content"), str)
    )
    assert (
        values(tmp_path / "bot.sqlite3", "SELECT update_id FROM inbox WHERE update_id = 900001")
        == []
    )
    assert values(
        tmp_path / "bot.sqlite3", "SELECT COUNT(*) FROM messages WHERE text LIKE '%forged%'"
    ) == [(0,)]


async def test_telegram_retries_after_403_until_the_secret_matches(
    fake_telegram, fake_llm, webhook_settings, start_webhook_bot
):
    settings = webhook_settings()
    await start_webhook_bot(settings)
    fake_telegram.deliver_to_webhook(local_url(settings), secret_token="stale-secret")
    fake_telegram.user_text(1001, "Do you ship abroad?")
    await fake_telegram.wait_for(
        lambda: [d for d in fake_telegram.webhook_deliveries if d["status"] == 403]
    )
    assert fake_telegram.sent_messages(1001) == []
    fake_telegram.deliver_to_webhook(local_url(settings), secret_token=SECRET)
    assert await fake_telegram.wait_for_messages(1001, 1) == ["Answer to: Do you ship abroad?"]


async def test_generated_secret_when_none_is_set(
    fake_telegram, fake_llm, webhook_settings, start_webhook_bot, caplog
):
    settings = webhook_settings(secret=None)
    with caplog.at_level("WARNING", logger="bot.telegram.webhook"):
        bot = await start_webhook_bot(settings)
    generated = fake_telegram.webhook["secret_token"]
    assert generated and len(generated) >= 32
    assert generated == bot.runtime.webhook_secret
    assert sum(generated in r.getMessage() for r in caplog.records) == 1
    fake_telegram.user_text(1001, "Can I pay by invoice?")
    assert await fake_telegram.wait_for_messages(1001, 1) == ["Answer to: Can I pay by invoice?"]


async def test_updates_pending_at_stop_are_answered_after_restart(
    fake_telegram, fake_llm, webhook_settings, tmp_path
):
    settings = webhook_settings()
    bot = TelegramBot(settings)
    await bot.start()
    fake_telegram.deliver_to_webhook(local_url(settings))
    try:
        fake_telegram.user_text(1001, "First question?")
        assert await fake_telegram.wait_for_messages(1001, 1) == ["Answer to: First question?"]
    finally:
        await bot.stop()
    # Down: Telegram cannot deliver and keeps the update.
    fake_telegram.user_text(1001, "Second question while you were away?")
    await fake_telegram.wait_for(
        lambda: [d for d in fake_telegram.webhook_deliveries if d["status"] != 200]
    )
    bot = TelegramBot(settings)
    await bot.start()
    fake_telegram.deliver_to_webhook(local_url(settings))
    try:
        texts = await fake_telegram.wait_for_messages(1001, 2)
        assert texts[1] == "Answer to: Second question while you were away?"
    finally:
        await bot.stop()


async def test_webhook_path_cannot_shadow_health_endpoints(
    fake_telegram, fake_llm, webhook_settings
):
    bot = TelegramBot(webhook_settings(path="/metrics"))
    with pytest.raises(ValueError, match="WEBHOOK_URL"):
        await bot.start()
    await bot.stop()


async def test_an_update_is_stored_before_telegram_hears_it_arrived(
    fake_telegram, fake_llm, webhook_settings, start_webhook_bot, tmp_path
):
    """A 200 tells Telegram to forget the update, so it may only come after the inbox write.

    Another process holds the database's write lock for longer than the bot waits for
    it: the update cannot be stored, so the webhook must not answer 200 and Telegram
    keeps it; once the lock is gone, the next delivery is stored and answered.
    """
    settings = webhook_settings()
    await start_webhook_bot(settings)
    fake_telegram.user_text(1001, "/start")
    await fake_telegram.wait_for_messages(1001, 1)
    blocker = sqlite3.connect(settings.storage.database_path, timeout=0)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        fake_telegram.user_text(1001, "Is my message safe?")
        await fake_telegram.wait_for(
            lambda: any(d["status"] == 500 for d in fake_telegram.webhook_deliveries), timeout=15
        )
    finally:
        blocker.rollback()
        blocker.close()
    texts = await fake_telegram.wait_for_messages(1001, 2, timeout=15)
    assert texts[1] == "Answer to: Is my message safe?"
    statuses = [d["status"] for d in fake_telegram.webhook_deliveries]
    assert statuses[1] == 500 and statuses[-1] == 200
