"""What every staff handler works with, resolved before it runs, and how it answers.

Like a middleware: the ticket a staff message is about and the agent who acts are
found once (``about_ticket``), so each handler stays a short, linear translation;
and every handler answers where the command was given (``staff_notice``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.desk_actions import Agent
from bot.services import Services
from bot.store.tickets import Ticket
from bot.telegram.bot_data import desk_of, journal_of, services_of
from bot.telegram.desk import TelegramDesk
from bot.telegram.record_ids import is_ticket_argument
from bot.telegram.sender import send_text

log = logging.getLogger(__name__)


def agent_of(update: Update) -> Agent:
    user = update.effective_user
    if user is None:
        return Agent(0, "staff")
    return Agent(user.id, user.full_name or user.username or str(user.id))


def _id_args(args: list[str]) -> list[str]:
    return [a for a in args if is_ticket_argument(a)]


@dataclass(frozen=True)
class StaffContext:
    """What a staff handler works with, resolved once before it runs (``about_ticket``)."""

    services: Services
    desk: TelegramDesk
    agent: Agent
    ticket: Ticket | None
    args: list[str]


StaffHandler = Callable[[Update, ContextTypes.DEFAULT_TYPE, StaffContext], Awaitable[None]]


def about_ticket(*, by_id: bool = True):
    """Find the ticket a staff message is about, and who acts, once for every handler:
    by an id among the command's arguments (``by_id``), its topic, or the message
    replied to."""

    def wrap(handler: StaffHandler):
        @functools.wraps(handler)
        async def run(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            services = services_of(context)
            args = list(context.args or [])
            ticket = await ticket_for(update, services, args if by_id else [])
            scene = StaffContext(services, desk_of(update, context), agent_of(update), ticket, args)
            await handler(update, context, scene)

        return run

    return wrap


async def ticket_for(update: Update, services: Services, args: list[str]) -> Ticket | None:
    """The ticket a staff message is about: an explicit id, its topic, or the message replied to."""
    ids = _id_args(args)
    if ids:
        return await services.tickets.get(int(ids[0].lstrip("#")))
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


async def staff_notice(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
    """Answer in the chat, and the topic, the staff message came from."""
    message = update.effective_message
    if not text:
        return
    try:
        await send_text(
            message.get_bot(),
            message.chat_id,
            text,
            thread_id=message.message_thread_id if message.is_topic_message else None,
            journal=journal_of(update, context),
        )
    except TelegramError as error:
        log.warning("could not answer in the staff group: %s", error)
