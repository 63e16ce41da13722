"""Staff messages in a ticket's topic, or replies to its card: relayed to the customer.

Only messages from the configured staff chat reach this handler (the filter is set
where it is registered). Customer-bound messages are sent by the bot, as text or
as copies of staff media, so staff accounts stay private.
"""

from __future__ import annotations

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import desk_actions
from bot.desk_actions import ActionResult, Agent
from bot.store.tickets import Ticket
from bot.telegram.bot_data import services_of
from bot.telegram.sender import RecipientGone, gone_if_forbidden
from bot.telegram.staff_context import StaffContext, about_ticket, staff_notice


@about_ticket(by_id=False)
async def staff_message(
    update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext
) -> None:
    """A staff message in a ticket's topic, or a reply to its card: goes to the customer."""
    message = update.effective_message
    ticket = scene.ticket
    if (
        ticket is None
        or message is None
        or (update.effective_user and update.effective_user.is_bot)
    ):
        return
    if message.text is not None:
        result, sent_id = await desk_actions.send_staff_text(
            scene.services, scene.desk, ticket, scene.agent, message.text
        )
    else:
        result, sent_id = await _copy_media(update, context, ticket, scene.agent)
    if not result.ok:
        await staff_notice(update, context, result.notice)
        return
    if sent_id is not None:
        await scene.services.tickets.record_relay(
            ticket.id, message.chat_id, message.message_id, ticket.chat_id, sent_id
        )


async def _copy_media(
    update: Update, context: ContextTypes.DEFAULT_TYPE, ticket: Ticket, agent: Agent
) -> tuple[ActionResult, int | None]:
    """Photos and files go to the customer as copies, so staff accounts stay private."""
    services = services_of(context)
    message = update.effective_message
    persona = services.knowledge.current.persona
    if not ticket.is_open:
        return ActionResult(
            False, persona.staff_message("resolved_reply", ticket_id=ticket.id)
        ), None
    caption = (
        await desk_actions.reply_prefix(services, ticket, agent) + (message.caption or "")
    ).strip()
    try:
        copied = await gone_if_forbidden(
            lambda: context.bot.copy_message(
                ticket.chat_id, message.chat_id, message.message_id, caption=caption or None
            )
        )
    except RecipientGone:
        await services.conversations.mark_blocked(ticket.chat_id)
        return ActionResult(False, persona.staff_message("customer_blocked"), False), None
    except TelegramError as error:
        return ActionResult(
            False, persona.staff_message("not_delivered", error=error.message)
        ), None
    await desk_actions.record_staff_reply(
        services,
        ticket,
        agent,
        message.caption,
        kind="media",
        telegram_message_id=copied.message_id,
    )
    return ActionResult(True, ""), copied.message_id
