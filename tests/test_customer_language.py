"""Which language the bot speaks to each customer in (bot.customer_language)."""

from __future__ import annotations

from bot.customer_language import SpokenLanguages
from bot.knowledge.language import warm_up
from bot.store.conversations import Customer


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
