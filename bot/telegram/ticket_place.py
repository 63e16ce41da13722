"""A ticket's place in the staff group: its forum topic, or its card where there are none.

Every Bot API call that puts something in that place, or changes the topic, is here,
so the desk above never branches on topic-or-card, and a missing right to manage
topics falls back to the card (or leaves the topic as it is) instead of failing.
"""

from __future__ import annotations

import logging

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import BadRequest, TelegramError

from bot.store.inbox import ReplyJournal
from bot.store.tickets import Ticket
from bot.telegram.sender import gone_if_forbidden, send_text

log = logging.getLogger(__name__)


async def open_topic(bot: Bot, staff_chat_id: int, ticket: Ticket, title: str) -> int | None:
    """The new topic's thread id, or None when the card must go in the group instead."""
    try:
        topic = await gone_if_forbidden(lambda: bot.create_forum_topic(staff_chat_id, title))
    except BadRequest as error:
        # Missing "manage topics" right, for example: fall back to a card in the group.
        log.warning("could not create a topic for ticket #%s: %s", ticket.id, error)
        return None
    return topic.message_thread_id


async def send_card(
    bot: Bot, staff_chat_id: int, thread_id: int | None, card: str, buttons: InlineKeyboardMarkup
) -> int:
    """The ticket's card, first in its topic or on its own in the group; returns its id."""
    sent = await gone_if_forbidden(
        lambda: bot.send_message(
            staff_chat_id, card, message_thread_id=thread_id, reply_markup=buttons
        )
    )
    return sent.message_id


async def rename_topic(bot: Bot, staff_chat_id: int, ticket: Ticket, title: str) -> None:
    try:
        await gone_if_forbidden(
            lambda: bot.edit_forum_topic(staff_chat_id, ticket.staff_thread_id, name=title)
        )
    except TelegramError as error:
        log.info("could not rename the topic of ticket #%s: %s", ticket.id, error)


async def close_topic(bot: Bot, ticket: Ticket) -> None:
    if ticket.staff_thread_id:
        try:
            await bot.close_forum_topic(ticket.staff_chat_id, ticket.staff_thread_id)
        except TelegramError as error:
            log.info("could not close topic of ticket #%s: %s", ticket.id, error)


async def reopen_topic(bot: Bot, ticket: Ticket) -> None:
    if ticket.staff_thread_id:
        try:
            await bot.reopen_forum_topic(ticket.staff_chat_id, ticket.staff_thread_id)
        except TelegramError as error:
            log.info("could not reopen topic of ticket #%s: %s", ticket.id, error)


async def post(
    bot: Bot, staff_chat_id: int, ticket: Ticket, text: str, journal: ReplyJournal | None
) -> int | None:
    """Post into the ticket's topic, or as a reply to its card; returns the message id."""
    try:
        messages = await send_text(
            bot,
            staff_chat_id,
            text,
            thread_id=ticket.staff_thread_id,
            reply_to=None if ticket.staff_thread_id else ticket.staff_card_message_id,
            journal=journal,
        )
    except TelegramError as error:
        log.error("could not post to the staff group for ticket #%s: %s", ticket.id, error)
        return None
    return messages[-1].message_id if messages else None


async def copy_in(
    bot: Bot,
    staff_chat_id: int,
    ticket: Ticket,
    from_chat_id: int,
    message_id: int,
    caption: str | None,
    kind: str,
) -> int | None:
    """Copy a customer's message into the ticket's place; None when Telegram refused."""
    try:
        copied = await gone_if_forbidden(
            lambda: bot.copy_message(
                staff_chat_id,
                from_chat_id,
                message_id,
                caption=caption,
                message_thread_id=ticket.staff_thread_id,
                reply_to_message_id=None
                if ticket.staff_thread_id
                else ticket.staff_card_message_id,
            )
        )
    except TelegramError as error:
        log.warning("could not copy a %s to staff: %s", kind, error)
        return None
    return copied.message_id
