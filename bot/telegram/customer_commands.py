"""Handlers for customer commands and the buttons under the bot's messages.

Each translates the command or press into one call of the core and sends what it
answers. Button data is checked, never trusted: forged data does nothing, and a
press only ever acts for the chat it came from.
"""

from __future__ import annotations

import logging

from telegram import CallbackQuery, Update
from telegram.ext import ContextTypes

from bot.core import SupportCore
from bot.outcome import (
    FEEDBACK_PREFIX,
    FORGET_PREFIX,
    HUMAN_BUTTON,
    KEEP_BUTTON,
    RATING_PREFIX,
    WITHDRAW_BUTTON,
    Outcome,
    Path,
    read_choice,
)
from bot.store.conversations import Customer
from bot.telegram.bot_data import journal_of, services_of
from bot.telegram.customer_replies import deliver, send_replies
from bot.telegram.incoming import customer_of
from bot.telegram.record_ids import is_record_id

log = logging.getLogger(__name__)


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


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/forget: the core asks first."""
    outcome = services_of(context).core.ask_forget(customer_of(update))
    await deliver(update, context, outcome, journal_of(update, context))


def _press(data: str, prefix: str, values: tuple[str, ...]) -> tuple[int, str] | None:
    """The id and value of button data ``prefix:id:value``; None for anything else."""
    parts = data.split(":")
    if parts[0] == prefix and len(parts) == 3 and is_record_id(parts[1]) and parts[2] in values:
        return int(parts[1]), parts[2]
    return None


async def button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Buttons under bot messages: ask for a person, withdraw or keep a request, feedback
    on an answer, a ticket's rating, an FAQ entry offered to pick from."""
    query = update.callback_query
    chat = update.effective_chat
    if chat is not None and chat.type != "private":
        # Customer buttons live in private chats; pressed in a group they would
        # open a ticket (or rate one) in the group's name.
        await query.answer()
        return
    core = services_of(context).core
    customer = customer_of(update)
    data = query.data or ""
    feedback = _press(data, FEEDBACK_PREFIX, ("0", "1"))
    rating = _press(data, RATING_PREFIX, ("1", "2", "3", "4", "5"))
    choice = read_choice(data)
    outcome: Outcome | None = None
    if data == HUMAN_BUTTON:
        await query.answer()
        outcome = await core.request_human(customer)
    elif data in (WITHDRAW_BUTTON, KEEP_BUTTON):
        # No ticket id in the data: a press only ever acts on its own chat's request.
        await query.answer()
        if query.message is not None:
            await _drop_buttons(query)
        outcome = await (
            core.withdraw(customer) if data == WITHDRAW_BUTTON else core.keep(customer)
        )
    elif feedback is not None:
        message_id, helpful = feedback
        outcome = await _feedback(query, core, customer, message_id, helpful == "1")
    elif rating is not None:
        ticket_id, stars = rating
        await _rating(query, core, customer, ticket_id, int(stars))
    elif choice is not None:
        # The buttons stay: the customer may try another of the entries offered.
        await query.answer()
        outcome = await core.choose(customer, *choice)
    else:
        await query.answer()
    if outcome is not None:
        await deliver(update, context, outcome, journal_of(update, context))


async def _feedback(
    query: CallbackQuery, core: SupportCore, customer: Customer, message_id: int, helpful: bool
) -> Outcome | None:
    """Thanks for it as a toast; returns the handoff when "not helpful" hands over."""
    result = await core.feedback(customer, message_id, helpful)
    if result.path == Path.HANDOFF:
        await query.answer()
        return result
    await query.answer(result.replies[0].text if result.replies else None)
    if query.message is not None and result.path != Path.IGNORED:
        await _drop_buttons(query)
    return None


async def _rating(
    query: CallbackQuery, core: SupportCore, customer: Customer, ticket_id: int, stars: int
) -> None:
    result = await core.rate_ticket(customer, ticket_id, stars)
    await query.answer(result.replies[0].text if result.replies else None)
    if result.path != Path.IGNORED:
        await _drop_buttons(query)


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
