"""The core's replies to a customer, sent: the one way an ``Outcome`` reaches a chat.

Telegram's message ids are stored with the replies they carry, so staff relays and
feedback buttons can find them later; a chat that blocked the bot is marked so.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot.metrics import note_reply
from bot.outcome import Outcome
from bot.store.inbox import ReplyJournal
from bot.telegram.bot_data import services_of
from bot.telegram.sender import RecipientGone, send_text
from bot.telegram.streaming import LiveReply

log = logging.getLogger(__name__)


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
