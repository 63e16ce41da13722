"""Every handler of the Telegram bot, registered in one place you can read top to bottom.

Staff commands answer only in the staff group, customer commands only in private
chats, and group messages addressed to the bot only with ``answer_in_groups``.
Handlers are small translations: an update in, a call of the core, sends out.
"""

from __future__ import annotations

import logging

from telegram import BotCommand, Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.knowledge.language import primary_subtag
from bot.knowledge.persona import Persona
from bot.metrics import note_incoming
from bot.settings import Settings
from bot.telegram import (
    admin,
    console_link,
    customer,
    customer_commands,
    staff,
    staff_commands,
)
from bot.telegram.desk import STAFF_PREFIX
from bot.telegram.groups import group_filter

# Handler errors keep the logger name they were always logged under.
log = logging.getLogger("bot.telegram.app")


def command_menu(persona: Persona) -> list[BotCommand]:
    """The customer commands Telegram lists under "/", described in the persona's words."""
    return [BotCommand(name, text) for name, text in persona.commands.items()]


def command_menus(persona: Persona) -> dict[str, list[BotCommand]]:
    """The menu for every app language the persona describes its commands in, by
    Telegram's two-letter code; "" is everyone else's."""
    menus = {"": command_menu(persona)}
    for code, translation in persona.translations.items():
        language = primary_subtag(code)
        if translation.commands and len(language) == 2 and language not in menus:
            menus[language] = command_menu(persona.speaking(code))
    return menus


def register_handlers(app: Application, settings: Settings) -> None:
    private = filters.ChatType.PRIVATE
    staff_chat_id = settings.telegram.staff_chat_id
    if staff_chat_id is not None:
        in_staff = filters.Chat(staff_chat_id)
        app.add_handler(CommandHandler("note", staff_commands.note, in_staff))
        app.add_handler(CommandHandler("tickets", staff_commands.list_tickets, in_staff))
        app.add_handler(CommandHandler("ticket", staff_commands.show_ticket, in_staff))
        app.add_handler(CommandHandler("claim", staff_commands.claim, in_staff))
        app.add_handler(CommandHandler("close", staff_commands.close, in_staff))
        app.add_handler(CommandHandler("handback", staff_commands.handback, in_staff))
        app.add_handler(CommandHandler("faq", staff_commands.faq, in_staff))
        app.add_handler(CommandHandler("reopen", staff_commands.reopen, in_staff))
        app.add_handler(CommandHandler("stats", admin.stats, in_staff))
        app.add_handler(CommandHandler("reload", admin.reload, in_staff))
        app.add_handler(
            MessageHandler(
                in_staff
                & ~filters.COMMAND
                & ~filters.StatusUpdate.ALL
                & filters.UpdateType.MESSAGE,
                staff.staff_message,
            )
        )
        app.add_handler(
            CallbackQueryHandler(staff_commands.staff_button, pattern=rf"^{STAFF_PREFIX}:")
        )
    app.add_handler(TypeHandler(Update, note_incoming), group=-1)
    app.add_handler(CommandHandler("start", customer_commands.start, private))
    app.add_handler(CommandHandler("help", customer_commands.help_command, private))
    app.add_handler(CommandHandler("reset", customer_commands.reset, private))
    app.add_handler(CommandHandler("human", customer_commands.human, private))
    app.add_handler(CommandHandler("cancel", customer_commands.cancel, private))
    app.add_handler(CommandHandler("forget", customer_commands.forget, private))
    app.add_handler(CommandHandler("reload", admin.reload, private))
    app.add_handler(CommandHandler("stats", admin.stats, private))
    app.add_handler(CommandHandler("console", console_link.console, private))
    app.add_handler(
        MessageHandler(private & filters.UpdateType.EDITED_MESSAGE, customer.edited_message)
    )
    # Unknown commands and commands for other bots are plain messages to the core.
    app.add_handler(
        MessageHandler(
            private & filters.UpdateType.MESSAGE & ~filters.StatusUpdate.ALL, customer.message
        )
    )
    if settings.conversation.answer_in_groups:
        app.add_handler(MessageHandler(group_filter(staff_chat_id), customer.message))
    app.add_handler(
        CallbackQueryHandler(
            customer_commands.forget_button, pattern=rf"^{customer_commands.FORGET_PREFIX}:"
        )
    )
    app.add_handler(CallbackQueryHandler(customer_commands.button))
    app.add_error_handler(on_error)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log it, and leave the update pending so that it is tried again on the next start."""
    log.error("error while handling an update", exc_info=context.error)
    processor = context.application.bot_data.get("processor")
    if isinstance(update, Update) and processor is not None:
        processor.failed_updates.add(update.update_id)
