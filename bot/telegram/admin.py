"""Admin commands. Each checks the sender against ADMIN_USER_IDS on every call."""

from __future__ import annotations

from telegram import Update
from telegram.ext import ContextTypes

from bot.errors import ConfigError
from bot.stats import compute_stats
from bot.telegram.bot_data import services_of
from bot.telegram.sender import send_text


def is_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    user = update.effective_user
    admins = services_of(context).settings.telegram.admin_user_ids
    return user is not None and user.id in admins


async def reload(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reload: validate persona and FAQ files and swap them in now."""
    if not is_admin(update, context):
        return
    services = services_of(context)
    try:
        knowledge = await services.knowledge.reload()
    except ConfigError as error:
        current = services.knowledge.current
        text = current.persona.staff_message(
            "reload_failed",
            version=current.version,
            problems="\n".join(str(p) for p in error.problems[:30]),
        )
    else:
        text = knowledge.persona.staff_message(
            "reload_done", version=knowledge.version, entries=len(knowledge.faq.entries)
        )
    await send_text(context.bot, update.effective_chat.id, text)


async def stats(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats [days]: deflection, escalations, response times and ratings."""
    if not is_admin(update, context):
        return
    args = context.args or []
    days = float(args[0]) if args and args[0].replace(".", "", 1).isdigit() else 30.0
    figures = await compute_stats(services_of(context).db, days)
    thread = update.effective_message.message_thread_id if update.effective_message else None
    await send_text(
        context.bot, update.effective_chat.id, "\n".join(figures.lines()), thread_id=thread
    )
