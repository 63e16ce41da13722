"""The staff desk in Telegram: each ticket as a forum topic (or a card), relayed both ways.

This is the ``StaffDesk`` the core talks to. Staff identities stay private:
customer-bound messages are sent by the bot, not forwarded from staff.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, TelegramError
from telegram.ext import Application, ContextTypes

from bot.customer_waits import sweep_customers
from bot.desk_actions import CustomerUnreachable
from bot.knowledge.live import KnowledgeBase
from bot.knowledge.persona import Persona
from bot.outcome import Button, Incoming, TicketContext
from bot.settings import Settings
from bot.sla import sweep
from bot.store.attachments import conversation_attachments
from bot.store.conversations import ConversationStore
from bot.store.inbox import ReplyJournal
from bot.store.tickets import Ticket, TicketStore
from bot.telegram.markdown import plain_text
from bot.telegram.sender import RecipientGone, gone_if_forbidden, send_text

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


def topic_title(ticket: Ticket, customer_name: str, persona: Persona) -> str:
    """``#12 · Anna · Asked for a person``: Telegram allows 128 characters."""
    return f"#{ticket.id} · {customer_name} · {persona.reason_name(ticket.reason)}"[:128]


def ticket_card(
    ticket: Ticket, context: TicketContext, persona: Persona, earlier: list[Ticket] = ()
) -> str:
    """Plain text: staff read it on phones, and it must never fail to parse."""
    customer = context.customer
    who = customer.display_name
    if customer.username:
        who += f" (@{customer.username})"
    say = persona.staff_message
    lines = [
        say("card_title", ticket_id=ticket.id, reason=persona.reason_name(context.reason)),
        say("card_customer", customer=who, chat_id=customer.chat_id),
    ]
    if customer.language:
        lines.append(say("card_language", language=customer.language))
    lines.append(say("card_summary", summary=context.summary))
    if context.last_messages:
        lines.append("")
        lines.append(say("card_last_messages"))
        for turn in context.last_messages[-6:]:
            who_said = "👤" if turn.role == "customer" else "🤖"
            # The bot's answers are Markdown: the card shows their words, not the asterisks.
            said = plain_text(turn.text) if turn.role == "bot" else turn.text
            lines.append(f"{who_said} {said[:300]}")
    if context.faq_matches:
        lines.append("")
        found = ", ".join(f"{m.id} ({m.confidence:.2f})" for m in context.faq_matches)
        lines.append(say("card_faq_found", matches=found))
    if earlier:
        lines.append("")
        lines.append(persona.staff_message("earlier_tickets", count=len(earlier)))
        lines += [ticket_line(t, persona) for t in earlier]
    lines.append("")
    lines.append(persona.staff_message("card_hint"))
    return "\n".join(lines)


def ticket_line(ticket: Ticket, persona: Persona) -> str:
    """One earlier ticket: number, date, reason, status."""
    return (
        f"#{ticket.id} · {ticket.created_at[:10]} · "
        f"{persona.reason_name(ticket.reason)} · {ticket.status}"
    )


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
            name = topic_title(ticket, context.customer.display_name, persona)
            try:
                topic = await gone_if_forbidden(
                    lambda: self.bot.create_forum_topic(self.staff_chat_id, name)
                )
                thread_id = topic.message_thread_id
            except BadRequest as error:
                # Missing "manage topics" right, for example: fall back to a card in the group.
                log.warning("could not create a topic for ticket #%s: %s", ticket.id, error)
        card = await gone_if_forbidden(
            lambda: self.bot.send_message(
                self.staff_chat_id,
                ticket_card(ticket, context, persona, earlier),
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
        try:
            await gone_if_forbidden(
                lambda: self.bot.edit_forum_topic(
                    self.staff_chat_id, ticket.staff_thread_id, name=title
                )
            )
        except TelegramError as error:
            log.info("could not rename the topic of ticket #%s: %s", ticket.id, error)

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
        if ticket.staff_thread_id:
            try:
                await self.bot.close_forum_topic(ticket.staff_chat_id, ticket.staff_thread_id)
            except TelegramError as error:
                log.info("could not close topic of ticket #%s: %s", ticket.id, error)

    async def ticket_reopened(self, ticket: Ticket) -> None:
        if ticket.staff_thread_id:
            try:
                await self.bot.reopen_forum_topic(ticket.staff_chat_id, ticket.staff_thread_id)
            except TelegramError as error:
                log.info("could not reopen topic of ticket #%s: %s", ticket.id, error)

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
        note = None
        if kind in ("voice", "audio") and transcript:
            note = self._staff_text("staff_voice_transcript", name=name, transcript=transcript)
        elif kind in ("voice", "audio") and outcome and outcome != "relayed":
            note = self._staff_text("staff_voice_untranscribed", name=name)
        caption = note if note and len(note) <= 1024 else None
        copied_id = None
        if message_id is not None:
            try:
                copied = await gone_if_forbidden(
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
            persona = self.knowledge.current.persona
            return await self.post(
                ticket, note or persona.staff_message("relayed_media", customer=name, kind=kind)
            )
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
                journal=self.journal,
            )
        except TelegramError as error:
            log.error("could not post to the staff group for ticket #%s: %s", ticket.id, error)
            return None
        return messages[-1].message_id if messages else None


def schedule_reminders(app: Application, settings: Settings) -> None:
    """Look for tickets waiting too long every ``support.sla_check_seconds``."""
    support = settings.support
    timed = (support.sla_minutes, support.unclaimed_notice_minutes, support.auto_close_hours)
    if not any(value > 0 for value in timed) or app.job_queue is None:
        return
    interval = settings.support.sla_check_seconds
    app.job_queue.run_repeating(_remind, interval=interval, first=interval, name="sla_reminders")


async def _remind(context: ContextTypes.DEFAULT_TYPE) -> None:
    desk: TelegramDesk | None = context.application.bot_data.get("desk")
    services = context.application.bot_data.get("services")
    if desk is None or services is None:
        return
    try:
        await sweep(
            services.settings,
            desk.tickets,
            desk.conversations,
            desk.knowledge.current.persona,
            desk.post,
            datetime.now(UTC),
        )
    except Exception:  # the next run tries again; a reminder is never worth a crash
        log.exception("could not send ticket reminders")
    try:
        await sweep_customers(
            services.settings,
            desk.tickets,
            desk.conversations,
            desk.knowledge.current.persona,
            desk.to_customer,
            desk.ticket_ended,
            datetime.now(UTC),
        )
    except Exception:
        log.exception("could not tell waiting customers or close left tickets")
