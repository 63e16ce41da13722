"""The language to speak to each customer in, for the persona's own texts.

A customer's message tells its language best; Telegram's ``language_code`` is the
language of their app, which is the next best thing for a message too short to
tell ("ok", a sticker) and for what the bot says unasked (a ticket closed by staff).
The last language a customer's messages told is remembered for a bounded number of
chats. Past that, and after a restart, it is read again from the customer's stored
messages when the bot speaks unasked: a ticket closed by staff the morning after a
restart still reaches a Chinese customer in Chinese.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from bot.knowledge.language import detect_language, primary_subtag
from bot.store.conversations import ConversationStore, Customer

if TYPE_CHECKING:
    from bot.knowledge.persona import Persona

REMEMBERED_CHATS = 10_000  # the chats whose language is kept, the most recent ones
RECALLED_MESSAGES = 5  # stored messages read back, newest first, until one tells


class SpokenLanguages:
    def __init__(
        self, conversations: ConversationStore | None = None, capacity: int = REMEMBERED_CHATS
    ) -> None:
        self.capacity = capacity
        self._conversations = conversations
        self._by_chat: OrderedDict[int, str] = OrderedDict()

    def heard(self, customer: Customer, text: str) -> str | None:
        """The customer wrote ``text``: the language to answer them in."""
        language = detect_language(text, customer.language) if text else None
        if language is not None:
            self._remember(customer.chat_id, language)
        return self.of(customer)

    def _remember(self, chat_id: int, language: str) -> None:
        self._by_chat[chat_id] = language
        self._by_chat.move_to_end(chat_id)
        while len(self._by_chat) > self.capacity:
            self._by_chat.popitem(last=False)

    def of(self, customer: Customer) -> str | None:
        """The language to speak to the customer in when they have not just written."""
        return self.of_chat(customer.chat_id) or primary_subtag(customer.language) or None

    def of_chat(self, chat_id: int) -> str | None:
        """The language the chat's messages last told, if one is remembered."""
        return self._by_chat.get(chat_id)

    def forget(self, chat_id: int) -> None:
        """The customer's messages are deleted (/forget): what they told goes with them."""
        self._by_chat.pop(chat_id, None)

    async def recall(self, chat_id: int) -> str | None:
        """The language to speak to a chat in unasked: remembered, else told again by its
        stored messages, else its app's language."""
        if (language := self.of_chat(chat_id)) is not None:
            return language
        if self._conversations is None:
            return None
        texts, app = await self._conversations.language_clues(chat_id, RECALLED_MESSAGES)
        for text in texts:
            if (language := detect_language(text, app)) is not None:
                self._remember(chat_id, language)
                return language
        return primary_subtag(app) if app else None

    async def speaking_to(self, persona: Persona, chat_id: int) -> Persona:
        """``persona`` in the language to write to the chat in unasked (``recall``)."""
        return persona.speaking(await self.recall(chat_id))
