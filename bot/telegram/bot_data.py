"""What handlers need from the running bot, kept in ``bot_data`` by ``TelegramBot.start``.

Looked up by these functions, not by key in every handler, so that a handler asks
for the services or its update's reply journal by name, and always sends through
that journal.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.services import Services
from bot.store.inbox import ReplyJournal
from bot.telegram.desk import TelegramDesk


def services_of(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.application.bot_data["services"]


def journal_of(update: Update, context: ContextTypes.DEFAULT_TYPE) -> ReplyJournal | None:
    """The update's reply journal, which every send for it goes through."""
    processor = context.application.bot_data.get("processor")
    return processor.journal_for(update) if processor is not None else None


def desk_of(update: Update, context: ContextTypes.DEFAULT_TYPE) -> TelegramDesk:
    """The staff desk, sending through the update's reply journal."""
    return context.application.bot_data["desk"].through(journal_of(update, context))
