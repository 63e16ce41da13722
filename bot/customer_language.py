"""The language to speak to each customer in, for the persona's own texts.

A customer's message tells its language best; Telegram's ``language_code`` is the
language of their app, which is the next best thing for a message too short to
tell ("ok", a sticker) and for what the bot says unasked (a ticket closed by staff).
The last language a customer's messages told is remembered for a bounded number of
chats; after a restart it is learnt again from the next message.
"""

from __future__ import annotations

from collections import OrderedDict

from bot.knowledge.language import detect_language, primary_subtag
from bot.store.conversations import Customer

REMEMBERED_CHATS = 10_000  # the chats whose language is kept, the most recent ones


class SpokenLanguages:
    def __init__(self, capacity: int = REMEMBERED_CHATS) -> None:
        self.capacity = capacity
        self._by_chat: OrderedDict[int, str] = OrderedDict()

    def heard(self, customer: Customer, text: str) -> str | None:
        """The customer wrote ``text``: the language to answer them in."""
        language = detect_language(text, customer.language) if text else None
        if language is not None:
            self._by_chat[customer.chat_id] = language
            self._by_chat.move_to_end(customer.chat_id)
            while len(self._by_chat) > self.capacity:
                self._by_chat.popitem(last=False)
        return self.of(customer)

    def of(self, customer: Customer) -> str | None:
        """The language to speak to the customer in when they have not just written."""
        return self.of_chat(customer.chat_id) or primary_subtag(customer.language) or None

    def of_chat(self, chat_id: int) -> str | None:
        """The language the chat's messages last told, if one is remembered."""
        return self._by_chat.get(chat_id)
