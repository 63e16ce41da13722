"""Handlers for what customers write: new messages, and edits of earlier ones.

Customers write in private chats; in groups, only messages addressed to the bot
reach ``message`` (``bot.telegram.groups``), and only with ``answer_in_groups``.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.outcome import Outcome
from bot.telegram.bot_data import journal_of, services_of
from bot.telegram.customer_replies import deliver, send_replies
from bot.telegram.incoming import incoming_edit, incoming_message
from bot.telegram.sender import TypingIndicator
from bot.telegram.streaming import LiveReply


async def message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any other message: the core decides between answer, handoff and relay."""
    core = services_of(context).core
    in_group = update.effective_message.chat.type != "private"
    incoming = incoming_message(update, context.bot.username)
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
    persona = services_of(context).knowledge.current.persona
    incoming = incoming_edit(update, persona)
    journal = journal_of(update, context)
    outcome = await services_of(context).core.edited(incoming, journal)
    await send_replies(update, context, outcome, journal)
