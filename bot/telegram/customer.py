"""Handlers for customers: commands, messages and their buttons.

Customers write in private chats; in groups, only messages addressed to the bot
reach ``message`` (``bot.telegram.groups``), and only with ``answer_in_groups``.
"""

from __future__ import annotations

import logging
import re

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot.metrics import note_reply
from bot.outcome import (
    FEEDBACK_PREFIX,
    FORGET_PREFIX,
    HUMAN_BUTTON,
    KEEP_BUTTON,
    RATING_PREFIX,
    WITHDRAW_BUTTON,
    Incoming,
    Outcome,
    Path,
)
from bot.store.conversations import Customer
from bot.store.inbox import ReplyJournal
from bot.telegram.bot_data import journal_of, services_of
from bot.telegram.groups import without_mention
from bot.telegram.media import attachments_of
from bot.telegram.sender import RecipientGone, TypingIndicator, send_text
from bot.telegram.streaming import LiveReply

log = logging.getLogger(__name__)

# Ids in button data: ASCII digits that fit SQLite's integers. str.isdigit() also
# accepts "²", which int() rejects, and longer numbers overflow the database driver.
_ID = re.compile(r"[0-9]{1,18}")


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
    journal: ReplyJournal | None,
    live: LiveReply | None = None,
) -> None:
    """Send the core's replies, counted by path in /metrics (``send_replies``)."""
    note_reply(context, update.effective_chat.id, outcome.path)
    await send_replies(update, context, outcome, journal, live)


async def send_replies(
    update: Update,
    context: ContextTypes.DEFAULT_TYPE,
    outcome: Outcome,
    journal: ReplyJournal | None,
    live: LiveReply | None = None,
) -> None:
    """Send the core's replies; record Telegram's message ids for relays and feedback.

    When an answer was streamed, its first reply takes the place of the preview.
    ``journal`` is None for an answer sent after its update was done.
    """
    services = services_of(context)
    chat_id = update.effective_chat.id
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
                    journal=journal,
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
    outcome = await services_of(context).core.start(customer_of(update))
    await deliver(update, context, outcome, journal_of(update, context))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/help: what the bot can do."""
    outcome = await services_of(context).core.help(customer_of(update))
    await deliver(update, context, outcome, journal_of(update, context))


async def reset(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reset: a fresh conversation."""
    outcome = await services_of(context).core.reset(customer_of(update))
    await deliver(update, context, outcome, journal_of(update, context))


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/cancel: withdraw a request nobody from the team has taken yet."""
    outcome = await services_of(context).core.withdraw(customer_of(update))
    await deliver(update, context, outcome, journal_of(update, context))


async def human(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/human: hand over to a person."""
    outcome = await services_of(context).core.request_human(customer_of(update))
    await deliver(update, context, outcome, journal_of(update, context))


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
    journal = journal_of(update, context)
    live = None
    async with TypingIndicator(context.bot, incoming.customer.chat_id) as typing:
        if core.settings.llm.streaming and core.llm is not None and not in_group:
            # The streamed text shows progress from its first words on.
            live = LiveReply(
                context.bot, incoming.customer.chat_id, journal=journal, on_first_text=typing.stop
            )

        async def answer_later(outcome: Outcome) -> None:
            await deliver(update, context, outcome, None)
            if isinstance(update.update_id, int):
                await services_of(context).inbox.mark_done(update.update_id)

        outcome = await core.handle(
            incoming,
            on_text=live.on_text if live else None,
            on_done=live.model_done if live else None,
            later=answer_later,
            journal=journal,
        )
    if outcome.answered_later and isinstance(update.update_id, int):
        # Pending in the inbox until its answer is out: a restart in between answers it.
        context.application.update_processor.failed_updates.add(update.update_id)
    await deliver(update, context, outcome, journal, live)


async def edited_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edit is not a new question: the core says so, or relays it to staff."""
    msg = update.edited_message
    persona = services_of(context).knowledge.current.persona
    incoming = Incoming(
        customer_of(update),
        persona.staff_message("edited_message", text=msg.text or msg.caption or ""),
        "text",
        msg.message_id,
        edited=True,
    )
    journal = journal_of(update, context)
    outcome = await services_of(context).core.edited(incoming, journal)
    await send_replies(update, context, outcome, journal)


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
        if result.path == Path.HANDOFF:
            outcome = result
            await query.answer()
        else:
            toast = result.replies[0].text if result.replies else None
            await query.answer(toast)
            if query.message is not None and result.path != Path.IGNORED:
                await _drop_buttons(query)
    elif (
        parts[0] == RATING_PREFIX
        and len(parts) == 3
        and _ID.fullmatch(parts[1])
        and parts[2] in ("1", "2", "3", "4", "5")
    ):
        result = await services.core.rate_ticket(customer, int(parts[1]), int(parts[2]))
        await query.answer(result.replies[0].text if result.replies else None)
        if result.path != Path.IGNORED:
            await _drop_buttons(query)
    else:
        await query.answer()
    if outcome is not None:
        await deliver(update, context, outcome, journal_of(update, context))


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/forget: the core asks first."""
    outcome = services_of(context).core.ask_forget(customer_of(update))
    await deliver(update, context, outcome, journal_of(update, context))


async def forget_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The answer to /forget, from the chat's own private conversation only."""
    query = update.callback_query
    chat = update.effective_chat
    await query.answer()
    if chat is None or chat.type != "private":
        return
    if not (query.data or "").startswith(f"{FORGET_PREFIX}:"):
        # python-telegram-bot hands a press with empty data to every pattern handler.
        return
    if query.message is not None:
        await _drop_buttons(query)
    confirmed = query.data == f"{FORGET_PREFIX}:yes"
    core = services_of(context).core
    outcome = await core.forget(customer_of(update), confirmed, keep_update_id=update.update_id)
    await send_replies(update, context, outcome, journal_of(update, context))


async def _drop_buttons(query) -> None:
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except Exception as error:  # the buttons staying is harmless
        log.debug("could not remove buttons: %s", error)
