"""How a customer's message becomes a row in the conversation store.

A message is stored on its way to an answer, when it is put off over the rate
limit, as a notice is sent about it, or with its ticket when it is relayed to
staff; each path stores it the same way (an edit keeps no Telegram message id,
so it is not mistaken for the original), decided here once.
"""

from __future__ import annotations

from bot.outcome import Incoming
from bot.store.conversations import ConversationStore, StoredMessage


class CustomerMessages:
    """The customer's side of ``ConversationStore``, fed with ``Incoming`` messages."""

    def __init__(self, conversations: ConversationStore, history_limit: int):
        self.conversations = conversations
        self.history_limit = history_limit  # earlier messages handed back with a new one

    async def store(self, incoming: Incoming, ticket_id: int | None = None) -> int:
        return await self.conversations.add_message(
            incoming.customer.chat_id,
            "customer",
            incoming.text,
            kind=incoming.kind,
            telegram_message_id=_message_id(incoming),
            ticket_id=ticket_id,
            attachments=incoming.attachments,
        )

    async def take(self, incoming: Incoming, stored_id: int | None) -> list[StoredMessage]:
        """Store the message (unless put off, and so stored, before); the history before it."""
        customer = incoming.customer
        if stored_id is None:
            # In one trip to the database: customer, history, message.
            return await self.conversations.take_customer_message(
                customer,
                incoming.text,
                kind=incoming.kind,
                telegram_message_id=_message_id(incoming),
                history_limit=self.history_limit,
                attachments=incoming.attachments,
            )
        await self.conversations.upsert_customer(customer)
        history = await self.conversations.history(customer.chat_id, self.history_limit + 1)
        return [m for m in history if m.id != stored_id][-self.history_limit :]


def _message_id(incoming: Incoming) -> int | None:
    return None if incoming.edited else incoming.message_id
