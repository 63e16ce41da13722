"""Which language the bot speaks to each customer in (bot.customer_language)."""

from __future__ import annotations

from bot.customer_language import SpokenLanguages
from bot.knowledge.language import warm_up
from bot.privacy import forget_chat
from bot.store.conversations import ConversationStore, Customer
from bot.store.db import Database


def test_the_last_message_that_tells_decides_and_the_app_only_before_it():
    warm_up()
    languages = SpokenLanguages()
    customer = Customer(chat_id=1, language="en-GB")
    assert languages.of(customer) == "en"  # nothing written yet: the app's language
    assert languages.heard(customer, "Wo ist mein Paket? Ich warte seit einer Woche.") == "de"
    assert languages.heard(customer, "ok") == "de"  # too short to tell: still German
    assert languages.of(customer) == "de"
    assert languages.heard(customer, "¿Dónde está mi pedido? Llevo una semana esperando.") == "es"
    assert languages.of_chat(2) is None
    assert languages.of(Customer(chat_id=2)) is None


def test_only_the_most_recent_chats_are_remembered():
    warm_up()
    languages = SpokenLanguages(capacity=100)
    for chat_id in range(1_000):
        languages.heard(Customer(chat_id=chat_id), "Wo ist mein Paket? Ich warte seit einer Woche.")
    remembered = [c for c in range(1_000) if languages.of_chat(c) is not None]
    assert remembered == list(range(900, 1_000))


async def test_after_a_restart_the_language_is_read_back_from_the_stored_messages(tmp_path):
    warm_up()
    async with Database(tmp_path / "bot.sqlite3") as db:
        conversations = ConversationStore(db)
        chinese = Customer(chat_id=1, language="en")
        await conversations.upsert_customer(chinese)
        await conversations.add_message(1, "customer", "我的包裹已经一个星期了还没到")
        await conversations.add_message(1, "customer", "ok")  # newest, tells nothing
        await conversations.add_message(1, "staff", "Hello, we are looking into it.")
        short = Customer(chat_id=2, language="de-AT")
        await conversations.upsert_customer(short)
        await conversations.add_message(2, "customer", "ok")

        restarted = SpokenLanguages(conversations)
        assert restarted.of_chat(1) is None  # nothing in memory after the restart
        assert await restarted.recall(1) == "zh"
        assert restarted.of_chat(1) == "zh"  # read once, then remembered
        assert await restarted.recall(2) == "de"  # nothing tells: the app's language
        assert await restarted.recall(3) is None  # a chat never seen

        restarted.forget(1)
        await forget_chat(db, 1)
        assert await restarted.recall(1) is None  # nothing of the chat is left to tell
