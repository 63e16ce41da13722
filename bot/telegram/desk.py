"""The staff desk in Telegram: each ticket as a forum topic (or a card), relayed both ways.

This is the ``StaffDesk`` the core talks to. Staff identities stay private:
customer-bound messages are sent by the bot, not forwarded from staff.
"""

from __future__ import annotations

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError

from bot.desk_actions import CustomerUnreachable
from bot.knowledge.live import KnowledgeBase
from bot.outcome import Button, Incoming, TicketContext
from bot.store.attachments import conversation_attachments
from bot.store.conversations import ConversationStore
from bot.store.inbox import ReplyJournal
from bot.store.tickets import Ticket, TicketStore
from bot.telegram import ticket_place
from bot.telegram.record_ids import is_record_id
from bot.telegram.sender import RecipientGone, gone_if_forbidden, send_text
from bot.telegram.ticket_views import ticket_card, topic_title, voice_note

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


def card_press(data: str) -> tuple[str, int] | None:
    """The action and ticket id of a press on ``staff_buttons``; None for data not made there."""
    parts = data.split(":")
    if len(parts) != 3 or parts[0] != STAFF_PREFIX or not is_record_id(parts[2]):
        return None
    return parts[1], int(parts[2])


class TelegramDesk:
    """The core's ``StaffDesk`` and the desk actions' ``DeskChannel``, in one staff group."""

    def __init__(
        self,
        bot: Bot,
        staff_chat_id: int,
        tickets: TicketStore,
        conversations: ConversationStore,
        knowledge: KnowledgeBase,
        journal: ReplyJournal | None = None,
        is_forum: bool | None = None,
    ):
        self.bot = bot
        self.staff_chat_id = staff_chat_id
        self.tickets = tickets
        self.conversations = conversations
        self.knowledge = knowledge  # for the staff texts in persona.yaml
        self.journal = journal  # an update's, on the desk ``through`` returns for it
        self._is_forum = is_forum  # asked of Telegram once, when first needed

    def through(self, journal: ReplyJournal | None) -> TelegramDesk:
        """The same desk, sending through one update's reply journal, so that the update
        handled again after a crash does not repeat what staff or customer already have."""
        if journal is None:
            return self
        return TelegramDesk(
            self.bot,
            self.staff_chat_id,
            self.tickets,
            self.conversations,
            self.knowledge,
            journal,
            self._is_forum,
        )

    async def is_forum(self) -> bool:
        if self._is_forum is None:
            chat = await gone_if_forbidden(lambda: self.bot.get_chat(self.staff_chat_id))
            self._is_forum = bool(getattr(chat, "is_forum", False))
        return self._is_forum

    async def ticket_opened(self, ticket: Ticket, context: TicketContext) -> None:
        thread_id = None
        persona = self.knowledge.current.persona
        earlier = await self.tickets.earlier_for_chat(ticket.chat_id, ticket.id)
        if await self.is_forum():
            title = topic_title(ticket, context.customer.display_name, persona)
            thread_id = await ticket_place.open_topic(self.bot, self.staff_chat_id, ticket, title)
        card_id = await ticket_place.send_card(
            self.bot,
            self.staff_chat_id,
            thread_id,
            ticket_card(ticket, context, persona, earlier),
            staff_buttons(ticket),
        )
        await self.tickets.set_staff_place(ticket.id, self.staff_chat_id, thread_id, card_id)
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
        persona = self.knowledge.current.persona
        await self.post(ticket, persona.message("staff_earlier_attachments"))
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
        """``ticket`` is as joined: a stronger reason has replaced the old one already."""
        persona = self.knowledge.current.persona
        name = persona.reason_name(reason)
        await self.post(ticket, persona.staff_message("asked_again", reason=name))
        if ticket.staff_thread_id and ticket.reason == reason:
            await self._rename_topic(ticket)

    async def _rename_topic(self, ticket: Ticket) -> None:
        """The ticket's reason shows in the topic's title, where staff triage from."""
        customer = await self.conversations.get_customer(ticket.chat_id)
        name = customer.display_name if customer else str(ticket.chat_id)
        title = topic_title(ticket, name, self.knowledge.current.persona)
        await ticket_place.rename_topic(self.bot, self.staff_chat_id, ticket, title)

    async def ticket_ended(self, ticket: Ticket, note: str) -> None:
        """A ticket ended on the customer's side: staff read why where they work on it."""
        ticket = await self.tickets.get(ticket.id) or ticket  # with its place, set after opening
        await self.post(ticket, note)
        await self.ticket_closed(ticket)

    # -- DeskChannel -------------------------------------------------------------------

    async def to_customer(
        self, ticket: Ticket, text: str, buttons: tuple[Button, ...] = ()
    ) -> int | None:
        try:
            sent = await send_text(
                self.bot, ticket.chat_id, text, buttons=buttons, journal=self.journal
            )
        except RecipientGone as error:
            raise CustomerUnreachable(str(error), blocked=True) from error
        except TelegramError as error:
            raise CustomerUnreachable(error.message) from error
        return sent[-1].message_id if sent else None

    async def to_staff(self, ticket: Ticket, text: str) -> None:
        await self.post(ticket, text)

    async def ticket_closed(self, ticket: Ticket) -> None:
        await ticket_place.close_topic(self.bot, ticket)

    async def ticket_reopened(self, ticket: Ticket) -> None:
        await ticket_place.reopen_topic(self.bot, ticket)

    async def relay_from_customer(
        self, ticket: Ticket, incoming: Incoming, journal: ReplyJournal | None = None
    ) -> None:
        if journal is not None:
            await self.through(journal).relay_from_customer(ticket, incoming)
            return
        ticket = await self.tickets.get(ticket.id) or ticket
        name = incoming.customer.display_name
        say = self.knowledge.current.persona.staff_message
        if incoming.kind == "text":
            sent = await self.post(ticket, say("relayed_text", customer=name, text=incoming.text))
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
        persona = self.knowledge.current.persona
        note = voice_note(persona, name, kind, transcript, outcome)
        caption = note if note and len(note) <= 1024 else None
        copied_id = None
        if message_id is not None:
            copied_id = await ticket_place.copy_in(
                self.bot, self.staff_chat_id, ticket, chat_id, message_id, caption, kind
            )
        if copied_id is None:
            return await self.post(
                ticket, note or persona.staff_message("relayed_media", customer=name, kind=kind)
            )
        if note and caption is None:
            await self.post(ticket, note)
        return copied_id

    async def post(self, ticket: Ticket, text: str) -> int | None:
        """Post into the ticket's topic, or as a reply to its card; returns the message id."""
        return await ticket_place.post(self.bot, self.staff_chat_id, ticket, text, self.journal)
