"""Handlers for customers: commands, messages and their buttons.

Customers write in private chats; in groups, only messages addressed to the bot
reach ``message`` (``bot.telegram.groups``), and only with ``answer_in_groups``.
"""

from __future__ import annotations

import logging
import re

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.core import (
    FEEDBACK_PREFIX,
    HUMAN_BUTTON,
    KEEP_BUTTON,
    RATING_PREFIX,
    WITHDRAW_BUTTON,
    Button,
    Incoming,
    Outcome,
)
from bot.metrics import note_reply
from bot.privacy import forget_chat
from bot.services import Services
from bot.store.conversations import Customer
from bot.telegram.groups import without_mention
from bot.telegram.media import attachments_of
from bot.telegram.sender import RecipientGone, TypingIndicator, send_text
from bot.telegram.streaming import LiveReply

log = logging.getLogger(__name__)

# Ids in button data: ASCII digits that fit SQLite's integers. str.isdigit() also
# accepts "²", which int() rejects, and longer numbers overflow the database driver.
_ID = re.compile(r"[0-9]{1,18}")


def services_of(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data["services"]


def customer_of(update: Update) -> Customer:
    chat = update.effective_chat
    user = update.effective_user
    return Customer(
        chat_id=chat.id if chat else (user.id if user else 0),
        user_id=user.id if user else None,
        first_name=(user.first_name if user else "") or "",
        last_name=(user.last_name if user else "") or "",
        username=(user.username if user else "") or "",
        language=(user.language_code if user else "") or "",
    )


def message_kind(message: Message) -> str:
    """What the customer sent, named the way tickets and transcripts show it."""
    if message.text is not None:
        return "text"
    for kind in (
        "photo",
        "sticker",
        "voice",
        "video",
        "video_note",
        "animation",
        "audio",
        "document",
        "location",
        "venue",
        "contact",
        "poll",
        "dice",
    ):
        if getattr(message, kind, None):
            return kind
    return "other"


async def deliver(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    outcome: Outcome,
    live: LiveReply | None = None,
) -> None:
    """Send the core's replies; record Telegram's message ids for relays and feedback.

    When an answer was streamed, its first reply takes the place of the preview.
    """
    services = services_of(context)
    chat_id = update.effective_chat.id
    note_reply(context, chat_id, outcome.path)
    # In a group the answer replies to the message it answers.
    message = update.effective_message
    reply_to = message.message_id if message and message.chat.type != "private" else None
    try:
        for number, reply in enumerate(outcome.replies):
            if number == 0 and live is not None and live.started:
                ids = await live.finish(reply.text, reply.buttons, markdown=reply.markdown)
            else:
                sent = await send_text(
                    context.bot,
                    chat_id,
                    reply.text,
                    buttons=reply.buttons,
                    markdown=reply.markdown,
                    reply_to=reply_to if number == 0 else None,
                )
                ids = [m.message_id for m in sent]
            if reply.stored_id is not None and ids:
                await services.conversations.set_telegram_message_id(reply.stored_id, ids[-1])
    except RecipientGone:
        log.info("chat %s blocked the bot; not sending to it", chat_id)
        await services.conversations.mark_blocked(chat_id)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: greet the customer."""
    await deliver(update, context, await services_of(context).core.start(customer_of(update)))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help: what the bot can do."""
    await deliver(update, context, await services_of(context).core.help(customer_of(update)))


async def reset(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reset: a fresh conversation."""
    await deliver(update, context, await services_of(context).core.reset(customer_of(update)))


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel: withdraw a request nobody from the team has taken yet."""
    await deliver(update, context, await services_of(context).core.withdraw(customer_of(update)))


async def human(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/human: hand over to a person."""
    core = services_of(context).core
    await deliver(update, context, await core.request_human(customer_of(update)))


async def message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other message: the core decides between answer, handoff and relay."""
    msg = update.effective_message
    core = services_of(context).core
    text = msg.text if msg.text is not None else msg.caption
    in_group = msg.chat.type != "private"
    if in_group:
        text = without_mention(text, context.bot.username)
    incoming = Incoming(
        customer=customer_of(update),
        text=text,
        kind=message_kind(msg),
        message_id=msg.message_id,
        attachments=attachments_of(msg),
    )
    live = None
    if core.settings.llm.streaming and core.llm is not None and not in_group:
        live = LiveReply(context.bot, incoming.customer.chat_id)
    async with TypingIndicator(context.bot, incoming.customer.chat_id) as typing:
        if live is not None:
            live.on_first_text = typing.stop  # the streamed text shows progress from here

        async def answer_later(outcome: Outcome) -> None:
            await deliver(update, context, outcome)
            if isinstance(update.update_id, int):
                await services_of(context).inbox.mark_done(update.update_id)

        outcome = await core.handle(
            incoming,
            on_text=live.on_text if live else None,
            on_done=live.model_done if live else None,
            later=answer_later,
        )
    if outcome.answered_later and isinstance(update.update_id, int):
        # Pending in the inbox until its answer is out: a restart in between answers it.
        context.application.update_processor.failed_updates.add(update.update_id)
    await deliver(update, context, outcome, live)


async def edited_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edit is not a new question: say so once instead of answering twice."""
    services = services_of(context)
    customer = customer_of(update)
    ticket = await services.tickets.open_for_chat(customer.chat_id)
    if ticket is not None and services.core.desk is not None:
        msg = update.edited_message
        persona = services.knowledge.current.persona
        edited = persona.staff_message("edited_message", text=msg.text or msg.caption or "")
        incoming = Incoming(customer, edited, "text", msg.message_id)
        await services.core.handle(incoming)
        return
    text = services.knowledge.current.persona.message("edited_ignored")
    try:
        await send_text(context.bot, customer.chat_id, text)
    except RecipientGone:
        await services.conversations.mark_blocked(customer.chat_id)


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Buttons under bot messages. Data is checked, never trusted: forged data does nothing."""
    query = update.callback_query
    chat = update.effective_chat
    if chat is not None and chat.type != "private":
        # Customer buttons live in private chats; pressed in a group they would
        # open a ticket (or rate one) in the group's name.
        await query.answer()
        return
    services = services_of(context)
    customer = customer_of(update)
    data = query.data or ""
    outcome: Outcome | None = None
    toast: str | None = None
    parts = data.split(":")
    if data == HUMAN_BUTTON:
        await query.answer()
        outcome = await services.core.request_human(customer)
    elif data in (WITHDRAW_BUTTON, KEEP_BUTTON):
        # No ticket id in the data: a press only ever acts on its own chat's request.
        await query.answer()
        if query.message is not None:
            await _drop_buttons(query)
        core = services.core
        outcome = await (
            core.withdraw(customer) if data == WITHDRAW_BUTTON else core.keep(customer)
        )
    elif (
        parts[0] == FEEDBACK_PREFIX
        and len(parts) == 3
        and _ID.fullmatch(parts[1])
        and parts[2] in ("0", "1")
    ):
        result = await services.core.feedback(customer, int(parts[1]), parts[2] == "1")
        if result.path == "handoff":
            outcome = result
            await query.answer()
        else:
            toast = result.replies[0].text if result.replies else None
            await query.answer(toast)
            if query.message is not None and result.path != "ignored":
                await _drop_buttons(query)
    elif (
        parts[0] == RATING_PREFIX
        and len(parts) == 3
        and _ID.fullmatch(parts[1])
        and parts[2] in ("1", "2", "3", "4", "5")
    ):
        rating = int(parts[2])
        ok = await services.tickets.rate(int(parts[1]), customer.chat_id, rating)
        persona = services.knowledge.current.persona
        await query.answer(persona.message("rating_thanks") if ok else None)
        if ok:
            await _drop_buttons(query)
    else:
        await query.answer()
    if outcome is not None:
        await deliver(update, context, outcome)


FORGET_PREFIX = "forget"


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/forget: ask first. The buttons carry no ids, so a press only ever acts on its own chat."""
    services = services_of(context)
    persona = services.knowledge.current.persona
    buttons = (Button("✅", f"{FORGET_PREFIX}:yes"), Button("✖️", f"{FORGET_PREFIX}:no"))
    chat_id = update.effective_chat.id
    note_reply(context, chat_id, "notice")
    try:
        await send_text(context.bot, chat_id, persona.message("forget_confirm"), buttons=buttons)
    except RecipientGone:
        await services.conversations.mark_blocked(chat_id)


async def forget_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The answer to /forget: close an open ticket (telling staff), then delete the chat's text."""
    query = update.callback_query
    chat = update.effective_chat
    await query.answer()
    if chat is None or chat.type != "private":
        return
    if not (query.data or "").startswith(f"{FORGET_PREFIX}:"):
        # python-telegram-bot hands a press with empty data to every pattern handler.
        return
    services = services_of(context)
    persona = services.knowledge.current.persona
    if query.message is not None:
        await _drop_buttons(query)
    if query.data != f"{FORGET_PREFIX}:yes":
        await send_text(context.bot, chat.id, persona.message("forget_cancelled"))
        return
    ticket = await services.tickets.open_for_chat(chat.id)
    if ticket is not None and await services.tickets.resolve(ticket.id, f"customer:{chat.id}"):
        desk = context.application.bot_data.get("desk")
        if desk is not None:
            await desk.post(ticket, persona.staff_message("forgotten", ticket_id=ticket.id))
            if ticket.staff_thread_id:
                try:
                    await context.bot.close_forum_topic(
                        ticket.staff_chat_id, ticket.staff_thread_id
                    )
                except Exception as error:  # the ticket is closed either way
                    log.info("could not close topic of ticket #%s: %s", ticket.id, error)
    await services.conversations.end_conversation(chat.id, "forget")
    await forget_chat(services.db, chat.id, keep_update_id=update.update_id)
    services.conversations.forget_known(chat.id)
    try:
        await send_text(context.bot, chat.id, persona.message("forget_done"))
    except RecipientGone:
        await services.conversations.mark_blocked(chat.id)


async def _drop_buttons(query) -> None:
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except Exception as error:  # the buttons staying is harmless
        log.debug("could not remove buttons: %s", error)
