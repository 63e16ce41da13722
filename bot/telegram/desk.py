"""The staff desk in Telegram: each ticket as a forum topic (or a card), relayed both ways.

This is the ``StaffDesk`` the core talks to. Staff identities stay private:
customer-bound messages are sent by the bot, not forwarded from staff.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, TelegramError

from bot.core import Incoming, TicketContext
from bot.knowledge.live import KnowledgeBase
from bot.store.attachments import conversation_attachments
from bot.store.conversations import ConversationStore
from bot.store.tickets import Ticket, TicketStore
from bot.telegram.markdown import plain_text
from bot.telegram.sender import send_text, with_retries

log = logging.getLogger(__name__)

STAFF_PREFIX = "staff"


def staff_buttons(ticket: Ticket) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("🙋 Claim", callback_data=f"{STAFF_PREFIX}:claim:{ticket.id}"),
                InlineKeyboardButton("✅ Close", callback_data=f"{STAFF_PREFIX}:close:{ticket.id}"),
            ]
        ]
    )


def ticket_card(ticket: Ticket, context: TicketContext) -> str:
    """Plain text: staff read it on phones, and it must never fail to parse."""
    customer = context.customer
    who = customer.display_name
    if customer.username:
        who += f" (@{customer.username})"
    lines = [
        f"🎫 Ticket #{ticket.id} · {context.reason}",
        f"Customer: {who}, chat {customer.chat_id}"
        + (f", language {customer.language}" if customer.language else ""),
        f"Summary: {context.summary}",
    ]
    if context.last_messages:
        lines.append("")
        lines.append("Last messages:")
        for turn in context.last_messages[-6:]:
            who_said = "👤" if turn.role == "customer" else "🤖"
            # The bot's answers are Markdown: the card shows their words, not the asterisks.
            said = plain_text(turn.text) if turn.role == "bot" else turn.text
            lines.append(f"{who_said} {said[:300]}")
    if context.faq_matches:
        lines.append("")
        lines.append(
            "FAQ found: " + ", ".join(f"{m.id} ({m.confidence:.2f})" for m in context.faq_matches)
        )
    lines.append("")
    lines.append(
        "Reply in this topic (or to this card) to answer the customer. "
        "/note for internal notes, /close when done."
    )
    return "\n".join(lines)


def waiting_since(timestamp: str) -> str:
    try:
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return "?"
    minutes = int((datetime.now(UTC) - then).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d"


class TelegramDesk:
    def __init__(
        self,
        bot: Bot,
        staff_chat_id: int,
        tickets: TicketStore,
        conversations: ConversationStore,
        knowledge: KnowledgeBase,
    ):
        self.bot = bot
        self.staff_chat_id = staff_chat_id
        self.tickets = tickets
        self.conversations = conversations
        self.knowledge = knowledge  # for the staff texts in persona.yaml
        self._is_forum: bool | None = None

    async def is_forum(self) -> bool:
        if self._is_forum is None:
            chat = await with_retries(lambda: self.bot.get_chat(self.staff_chat_id))
            self._is_forum = bool(getattr(chat, "is_forum", False))
        return self._is_forum

    async def ticket_opened(self, ticket: Ticket, context: TicketContext) -> None:
        thread_id = None
        if await self.is_forum():
            name = f"#{ticket.id} · {context.customer.display_name} · {context.reason}"[:128]
            try:
                topic = await with_retries(
                    lambda: self.bot.create_forum_topic(self.staff_chat_id, name)
                )
                thread_id = topic.message_thread_id
            except BadRequest as error:
                # Missing "manage topics" right, for example: fall back to a card in the group.
                log.warning("could not create a topic for ticket #%s: %s", ticket.id, error)
        card = await with_retries(
            lambda: self.bot.send_message(
                self.staff_chat_id,
                ticket_card(ticket, context),
                message_thread_id=thread_id,
                reply_markup=staff_buttons(ticket),
            )
        )
        await self.tickets.set_staff_place(
            ticket.id, self.staff_chat_id, thread_id, card.message_id
        )
        await self._earlier_attachments(ticket.id, context)

    async def _earlier_attachments(self, ticket_id: int, context: TicketContext) -> None:
        """Copy the photos, voice notes and files the customer sent before the ticket, so
        staff see what the card's transcript only names."""
        customer = context.customer
        earlier = [
            a
            for a in await conversation_attachments(self.conversations.db, customer.chat_id)
            if a.telegram_message_id is not None
        ]
        if not earlier:
            return
        ticket = await self.tickets.get(ticket_id)
        if ticket is None:
            return
        await self.post(ticket, self._staff_text("staff_earlier_attachments"))
        for attachment in earlier:
            sent = await self._copy_to_staff(
                ticket,
                customer.display_name,
                customer.chat_id,
                attachment.telegram_message_id,
                attachment.kind,
                attachment.transcript,
                attachment.outcome,
            )
            if sent is not None:
                await self.tickets.record_relay(
                    ticket.id,
                    self.staff_chat_id,
                    sent,
                    customer.chat_id,
                    attachment.telegram_message_id,
                )

    async def ticket_escalated_again(self, ticket: Ticket, reason: str) -> None:
        await self.post(ticket, f"ℹ️ The customer asked again ({reason}).")

    async def relay_from_customer(self, ticket: Ticket, incoming: Incoming) -> None:
        ticket = await self.tickets.get(ticket.id) or ticket
        name = incoming.customer.display_name
        if incoming.kind == "text":
            sent = await self.post(ticket, f"👤 {name}: {incoming.text}")
        else:
            attachment = incoming.attachments[0] if incoming.attachments else None
            sent = await self._copy_to_staff(
                ticket,
                name,
                incoming.customer.chat_id,
                incoming.message_id,
                incoming.kind,
                attachment.transcript if attachment else None,
                attachment.outcome if attachment else None,
            )
        if sent is not None:
            await self.tickets.record_relay(
                ticket.id, self.staff_chat_id, sent, incoming.customer.chat_id, incoming.message_id
            )

    async def _copy_to_staff(
        self,
        ticket: Ticket,
        name: str,
        chat_id: int,
        message_id: int | None,
        kind: str,
        transcript: str | None,
        outcome: str | None,
    ) -> int | None:
        """Copy a customer's media into the ticket's place; a voice note comes with its
        transcript (as its caption when it fits). Returns the id staff can reply to."""
        note = None
        if kind in ("voice", "audio") and transcript:
            note = self._staff_text("staff_voice_transcript", name=name, transcript=transcript)
        elif kind in ("voice", "audio") and outcome and outcome != "relayed":
            note = self._staff_text("staff_voice_untranscribed", name=name)
        caption = note if note and len(note) <= 1024 else None
        copied_id = None
        if message_id is not None:
            try:
                copied = await with_retries(
                    lambda: self.bot.copy_message(
                        self.staff_chat_id,
                        chat_id,
                        message_id,
                        caption=caption,
                        message_thread_id=ticket.staff_thread_id,
                        reply_to_message_id=None
                        if ticket.staff_thread_id
                        else ticket.staff_card_message_id,
                    )
                )
                copied_id = copied.message_id
            except TelegramError as error:
                log.warning("could not copy a %s to staff: %s", kind, error)
        if copied_id is None:
            return await self.post(ticket, note or f"👤 {name} sent a {kind}.")
        if note and caption is None:
            await self.post(ticket, note)
        return copied_id

    def _staff_text(self, key: str, **values: object) -> str:
        return self.knowledge.current.persona.message(key, **values)

    async def post(self, ticket: Ticket, text: str) -> int | None:
        """Post into the ticket's topic, or as a reply to its card; returns the message id."""
        try:
            messages = await send_text(
                self.bot,
                self.staff_chat_id,
                text,
                thread_id=ticket.staff_thread_id,
                reply_to=None if ticket.staff_thread_id else ticket.staff_card_message_id,
            )
        except TelegramError as error:
            log.error("could not post to the staff group for ticket #%s: %s", ticket.id, error)
            return None
        return messages[-1].message_id if messages else None
