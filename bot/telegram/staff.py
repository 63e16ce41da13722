"""Handlers for the staff group: replies relayed to customers, notes, and ticket commands.

Only messages from the configured staff chat reach these handlers (the filter
is set where they are registered), and every button press is checked again
here: a button's data alone never proves who pressed it or where.
"""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.core import RATING_PREFIX, Button
from bot.services import Services
from bot.store.tickets import Ticket
from bot.telegram.customer import services_of
from bot.telegram.desk import STAFF_PREFIX, TelegramDesk, waiting_since
from bot.telegram.sender import RecipientGone, send_text, with_retries

log = logging.getLogger(__name__)


def desk_of(context: ContextTypes.DEFAULT_TYPE) -> TelegramDesk:
    return context.application.bot_data["desk"]


def staff_name(update: Update) -> str:
    user = update.effective_user
    return (user.full_name or user.username or str(user.id)) if user else "staff"


async def ticket_for(update: Update, services: Services, args: list[str]) -> Ticket | None:
    """The ticket a staff message is about: an explicit id, its topic, or the message replied to."""
    if args and args[0].lstrip("#").isdigit():
        return await services.tickets.get(int(args[0].lstrip("#")))
    message = update.effective_message
    chat_id = update.effective_chat.id
    if message is None:
        return None
    if message.is_topic_message and message.message_thread_id:
        ticket = await services.tickets.by_staff_thread(chat_id, message.message_thread_id)
        if ticket is not None:
            return ticket
    reply = message.reply_to_message
    if reply is not None and not (
        message.is_topic_message and reply.message_id == message.message_thread_id
    ):
        return await services.tickets.by_staff_message(chat_id, reply.message_id)
    return None


async def staff_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A staff message in a ticket's topic, or a reply to its card: goes to the customer."""
    services = services_of(context)
    message = update.effective_message
    ticket = await ticket_for(update, services, [])
    if (
        ticket is None
        or message is None
        or (update.effective_user and update.effective_user.is_bot)
    ):
        return
    if not ticket.is_open:
        await _staff_notice(update, f"Ticket #{ticket.id} is resolved; /reopen it to reply.")
        return
    persona = services.knowledge.current.persona
    show_name = services.settings.escalation.copy_staff_names
    prefix = persona.messages.get("staff_reply_prefix", "")
    if show_name:
        prefix = f"{staff_name(update)}: "
    try:
        if message.text is not None:
            sent = await send_text(context.bot, ticket.chat_id, prefix + message.text)
            sent_id = sent[-1].message_id
        else:
            caption = (prefix + (message.caption or "")).strip() or None
            copied = await with_retries(
                lambda: context.bot.copy_message(
                    ticket.chat_id, message.chat_id, message.message_id, caption=caption
                )
            )
            sent_id = copied.message_id
    except RecipientGone:
        await services.conversations.mark_blocked(ticket.chat_id)
        await _staff_notice(
            update, "⚠️ The customer has blocked the bot; the reply was not delivered."
        )
        return
    except TelegramError as error:
        await _staff_notice(update, f"⚠️ Not delivered to the customer: {error.message}")
        return
    user = update.effective_user
    await services.conversations.add_message(
        ticket.chat_id,
        "staff",
        message.text or message.caption,
        kind="text" if message.text is not None else "media",
        telegram_message_id=sent_id,
        ticket_id=ticket.id,
    )
    await services.tickets.staff_replied(ticket.id, user.id if user else 0, staff_name(update))
    await services.tickets.record_relay(
        ticket.id, message.chat_id, message.message_id, ticket.chat_id, sent_id
    )


async def note(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/note text: an internal note on the ticket; the customer never sees it."""
    services = services_of(context)
    ticket = await ticket_for(update, services, [])
    text = " ".join(context.args or []).strip()
    if ticket is None or not text:
        await _staff_notice(
            update, "Use /note <text> inside a ticket's topic or as a reply to its card."
        )
        return
    await services.conversations.add_message(ticket.chat_id, "note", text, ticket_id=ticket.id)
    await services.tickets.add_event(
        ticket.id, "note", actor=f"staff:{update.effective_user.id}", detail=text
    )
    await _staff_notice(update, f"📝 Note saved on ticket #{ticket.id}.")


async def list_tickets(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/tickets: open and active tickets, oldest first, with how long they have waited."""
    services = services_of(context)
    tickets = await services.tickets.list("unresolved")
    if not tickets:
        await _staff_notice(update, "No open tickets. 🎉")
        return
    lines = [f"{len(tickets)} open ticket(s), oldest first:"]
    for t in tickets:
        customer = await services.conversations.get_customer(t.chat_id)
        name = customer.display_name if customer else str(t.chat_id)
        who = f", {t.assignee_name}" if t.assignee_name else ""
        lines.append(
            f"#{t.id} · {t.status} · {t.reason} · {name} · waiting {waiting_since(t.created_at)}{who}"
        )
    await _staff_notice(update, "\n".join(lines))


async def show_ticket(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ticket ID: the ticket's details and latest messages."""
    services = services_of(context)
    ticket = await ticket_for(update, services, context.args or [])
    if ticket is None:
        await _staff_notice(update, "No such ticket. Use /ticket <id>.")
        return
    customer = await services.conversations.get_customer(ticket.chat_id)
    transcript = await services.tickets.transcript(ticket)
    lines = [
        f"🎫 #{ticket.id} · {ticket.status} · {ticket.reason}",
        f"Customer: {customer.display_name if customer else ticket.chat_id}",
        f"Opened {ticket.created_at[:16]} · assignee {ticket.assignee_name or 'nobody'}",
        f"Summary: {ticket.summary or '-'}",
        "",
    ]
    icons = {"customer": "👤", "bot": "🤖", "staff": "🧑‍💼", "note": "📝"}
    for m in transcript[-15:]:
        media = f"[{m['kind']}] " if m["kind"] not in ("text", "media") else ""
        lines.append(f"{icons.get(m['role'], '?')} {media}{(m['text'] or '')[:300]}".rstrip())
    await _staff_notice(update, "\n".join(lines))


async def claim(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/claim: take the ticket."""
    services = services_of(context)
    ticket = await ticket_for(update, services, context.args or [])
    if ticket is None or not ticket.is_open:
        await _staff_notice(update, "No open ticket here to claim.")
        return
    user = update.effective_user
    await services.tickets.claim(ticket.id, user.id, staff_name(update))
    await _staff_notice(update, f"🙋 {staff_name(update)} claimed ticket #{ticket.id}.")


async def close(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/close: resolve the ticket and give the customer back to the bot."""
    services = services_of(context)
    ticket = await ticket_for(update, services, context.args or [])
    if ticket is None:
        await _staff_notice(update, "No ticket here to close. Use /close <id>.")
        return
    if not await close_ticket(
        context, ticket, f"staff:{update.effective_user.id}", staff_name(update)
    ):
        await _staff_notice(update, f"Ticket #{ticket.id} is already resolved.")
        return
    message = update.effective_message
    in_its_topic = bool(
        ticket.staff_thread_id
        and message is not None
        and message.is_topic_message
        and message.message_thread_id == ticket.staff_thread_id
    )
    if not in_its_topic:
        await _staff_notice(update, f"✅ Ticket #{ticket.id} closed.")


async def reopen(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reopen: the customer is handed to staff again."""
    services = services_of(context)
    ticket = await ticket_for(update, services, context.args or [])
    if ticket is None:
        await _staff_notice(update, "No ticket here to reopen. Use /reopen <id>.")
        return
    if not await services.tickets.reopen(ticket.id, f"staff:{update.effective_user.id}"):
        await _staff_notice(
            update,
            f"Ticket #{ticket.id} cannot be reopened (not resolved, "
            "or the customer has another open ticket).",
        )
        return
    if ticket.staff_thread_id:
        try:
            await context.bot.reopen_forum_topic(ticket.staff_chat_id, ticket.staff_thread_id)
        except TelegramError as error:
            log.info("could not reopen topic: %s", error)
    await _staff_notice(update, f"🔁 Ticket #{ticket.id} reopened.")


async def close_ticket(
    context: ContextTypes.DEFAULT_TYPE, ticket: Ticket, actor: str, closed_by: str
) -> bool:
    """Resolve, close the topic, tell the customer, ask for a rating, and start a fresh conversation.

    Ending the conversation keeps the handoff exchange out of the model's
    context, so the bot does not pick the old problem up again and loop.
    Staff are told in the ticket's place before its topic closes, because a
    closed topic refuses new messages.
    """
    services = services_of(context)
    if not await services.tickets.resolve(ticket.id, actor):
        return False
    await services.conversations.end_conversation(ticket.chat_id, "ticket_closed")
    await desk_of(context).post(ticket, f"✅ Ticket #{ticket.id} closed by {closed_by}.")
    if ticket.staff_thread_id:
        try:
            await context.bot.close_forum_topic(ticket.staff_chat_id, ticket.staff_thread_id)
        except TelegramError as error:
            log.info("could not close topic of ticket #%s: %s", ticket.id, error)
    persona = services.knowledge.current.persona
    rating = tuple(Button("⭐" * n, f"{RATING_PREFIX}:{ticket.id}:{n}") for n in range(1, 6))
    try:
        await send_text(
            context.bot, ticket.chat_id, persona.message("ticket_closed", ticket_id=ticket.id)
        )
        await send_text(
            context.bot,
            ticket.chat_id,
            persona.message("rating_prompt", ticket_id=ticket.id),
            buttons=rating,
        )
    except RecipientGone:
        await services.conversations.mark_blocked(ticket.chat_id)
    return True


async def staff_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Claim / Close on a ticket card, accepted only when pressed inside the staff group."""
    query = update.callback_query
    services = services_of(context)
    parts = (query.data or "").split(":")
    staff_chat = services.settings.telegram.staff_chat_id
    pressed_in = query.message.chat.id if isinstance(query.message, Message) else None
    if (
        len(parts) != 3
        or parts[0] != STAFF_PREFIX
        or not parts[2].isdigit()
        or staff_chat is None
        or pressed_in != staff_chat
    ):
        await query.answer()
        return
    ticket = await services.tickets.get(int(parts[2]))
    if ticket is None or ticket.staff_chat_id != staff_chat:
        await query.answer("Unknown ticket.")
        return
    user = update.effective_user
    if parts[1] == "claim" and ticket.is_open:
        await services.tickets.claim(ticket.id, user.id, staff_name(update))
        await query.answer(f"You claimed #{ticket.id}.")
        await desk_of(context).post(ticket, f"🙋 {staff_name(update)} claimed ticket #{ticket.id}.")
    elif parts[1] == "close" and ticket.is_open:
        await close_ticket(context, ticket, f"staff:{user.id}", staff_name(update))
        await query.answer(f"#{ticket.id} closed.")
    else:
        await query.answer(f"#{ticket.id} is {ticket.status}.")


async def _staff_notice(update: Update, text: str) -> None:
    message = update.effective_message
    try:
        await send_text(
            message.get_bot(),
            message.chat_id,
            text,
            thread_id=message.message_thread_id if message.is_topic_message else None,
        )
    except TelegramError as error:
        log.warning("could not answer in the staff group: %s", error)
