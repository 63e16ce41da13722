"""Handlers for the staff group: replies relayed to customers, notes, and ticket commands.

Only messages from the configured staff chat reach these handlers (the filter
is set where they are registered), and every button press is checked again
here: a button's data alone never proves who pressed it or where. What a
command does to a ticket lives in ``bot.desk_actions``; these handlers only
find the ticket and the agent, and say the result where the command was given.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot import desk_actions
from bot.desk_actions import ActionResult, Agent
from bot.services import Services
from bot.store.tickets import Ticket
from bot.telegram.bot_data import desk_of, journal_of, services_of
from bot.telegram.desk import TelegramDesk, card_press
from bot.telegram.sender import RecipientGone, gone_if_forbidden, send_text
from bot.telegram.ticket_views import waiting_since

log = logging.getLogger(__name__)


def agent_of(update: Update) -> Agent:
    user = update.effective_user
    if user is None:
        return Agent(0, "staff")
    return Agent(user.id, user.full_name or user.username or str(user.id))


def _id_args(args: list[str]) -> list[str]:
    return [a for a in args if a.lstrip("#").isdigit()]


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
        await _staff_notice(update, context, result.notice)
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
    caption = (desk_actions.reply_prefix(services, agent) + (message.caption or "")).strip()
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


@about_ticket(by_id=False)
async def note(update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext) -> None:
    """/note text: an internal note on the ticket; the customer never sees it."""
    text = " ".join(scene.args).strip()
    if scene.ticket is None:
        persona = scene.services.knowledge.current.persona
        await _staff_notice(update, context, persona.staff_message("note_usage"))
        return
    result = await desk_actions.add_note(scene.services, scene.ticket, scene.agent, text)
    await _staff_notice(update, context, result.notice)


async def list_tickets(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/tickets [TERM]: open tickets oldest first, or every ticket matching TERM."""
    services = services_of(context)
    persona = services.knowledge.current.persona
    term = " ".join(context.args or []).strip()
    if term:
        tickets = await services.tickets.search(term)
        if not tickets:
            await _staff_notice(update, context, persona.staff_message("search_none", term=term))
            return
        heading = persona.staff_message("search_results", count=len(tickets), term=term)
    else:
        tickets = await services.tickets.list("unresolved")
        if not tickets:
            await _staff_notice(update, context, persona.staff_message("no_open_tickets"))
            return
        heading = persona.staff_message("open_tickets", count=len(tickets))
    lines = [heading]
    for t in tickets:
        customer = await services.conversations.get_customer(t.chat_id)
        name = customer.display_name if customer else str(t.chat_id)
        if customer and customer.username:
            name += f" (@{customer.username})"
        who = f", {t.assignee_name}" if t.assignee_name else ""
        when = f"waiting {waiting_since(t.created_at)}" if t.is_open else t.created_at[:10]
        lines.append(
            f"#{t.id} · {t.status} · {persona.reason_name(t.reason)} · {name} · {when}{who}"
        )
    await _staff_notice(update, context, "\n".join(lines))


@about_ticket()
async def show_ticket(
    update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext
) -> None:
    """/ticket ID: the ticket's details and latest messages."""
    services, ticket = scene.services, scene.ticket
    persona = services.knowledge.current.persona
    if ticket is None:
        await _staff_notice(update, context, persona.staff_message("no_ticket", command="ticket"))
        return
    customer = await services.conversations.get_customer(ticket.chat_id)
    transcript = await services.tickets.transcript(ticket)
    details = persona.staff_message(
        "ticket_details",
        ticket_id=ticket.id,
        status=ticket.status,
        reason=persona.reason_name(ticket.reason),
        customer=customer.display_name if customer else ticket.chat_id,
        opened=ticket.created_at[:16].replace("T", " "),
        assignee=ticket.assignee_name or persona.staff_message("nobody"),
        summary=ticket.summary or "-",
    )
    lines = [details, ""]
    icons = {"customer": "👤", "bot": "🤖", "staff": "🧑‍💼", "note": "📝"}
    for m in transcript[-15:]:
        media = f"[{m['kind']}] " if m["kind"] not in ("text", "media") else ""
        lines.append(f"{icons.get(m['role'], '?')} {media}{(m['text'] or '')[:300]}".rstrip())
    await _staff_notice(update, context, "\n".join(lines))


@about_ticket()
async def claim(update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext) -> None:
    """/claim [ID] [force]: take the ticket; someone else's only with ``force``."""
    ticket = scene.ticket
    if ticket is None or not ticket.is_open:
        persona = scene.services.knowledge.current.persona
        await _staff_notice(update, context, persona.staff_message("no_ticket", command="claim"))
        return
    force = any(a.lower() == "force" for a in scene.args)
    result = await desk_actions.claim_ticket(scene.services, ticket, scene.agent, force=force)
    await _staff_notice(update, context, result.notice)


@about_ticket()
async def close(update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext) -> None:
    """/close: resolve the ticket and give the customer back to the bot, asking for a rating."""
    await _finish(update, context, scene, desk_actions.close_ticket, "close")


@about_ticket()
async def handback(update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext) -> None:
    """/handback: the bot answers the customer again; no rating is asked for."""
    await _finish(update, context, scene, desk_actions.hand_back, "handback")


async def _finish(
    update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext, action, command: str
) -> None:
    ticket = scene.ticket
    if ticket is None:
        persona = scene.services.knowledge.current.persona
        await _staff_notice(update, context, persona.staff_message("no_ticket", command=command))
        return
    result = await action(scene.services, scene.desk, ticket, scene.agent)
    message = update.effective_message
    in_its_topic = bool(
        ticket.staff_thread_id
        and message is not None
        and message.is_topic_message
        and message.message_thread_id == ticket.staff_thread_id
    )
    # Done in its topic, the ticket's own closing line already said it there.
    if not result.ok or not in_its_topic:
        await _staff_notice(update, context, result.notice)


@about_ticket()
async def reopen(update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext) -> None:
    """/reopen: the customer is handed to staff again."""
    if scene.ticket is None:
        persona = scene.services.knowledge.current.persona
        await _staff_notice(update, context, persona.staff_message("no_ticket", command="reopen"))
        return
    result = await desk_actions.reopen_ticket(scene.services, scene.desk, scene.ticket, scene.agent)
    await _staff_notice(update, context, result.notice)


@about_ticket()
async def faq(update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext) -> None:
    """/faq ID: send that FAQ entry's answer to the customer, as a staff reply."""
    persona = scene.services.knowledge.current.persona
    args = [a for a in scene.args if not a.lstrip("#").isdigit()]
    if scene.ticket is None or not args:
        await _staff_notice(update, context, persona.staff_message("faq_usage"))
        return
    result = await desk_actions.send_faq_answer(
        scene.services, scene.desk, scene.ticket, args[0], scene.agent
    )
    await _staff_notice(update, context, result.notice)


async def staff_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Claim / Close on a ticket card, accepted only when pressed inside the staff group."""
    query = update.callback_query
    services = services_of(context)
    press = card_press(query.data or "")
    staff_chat = services.settings.telegram.staff_chat_id
    pressed_in = query.message.chat.id if isinstance(query.message, Message) else None
    if press is None or staff_chat is None or pressed_in != staff_chat:
        await query.answer()
        return
    action, ticket_id = press
    ticket = await services.tickets.get(ticket_id)
    persona = services.knowledge.current.persona
    if ticket is None or ticket.staff_chat_id != staff_chat:
        await query.answer(persona.staff_message("unknown_ticket"))
        return
    agent = agent_of(update)
    if action == "claim" and ticket.is_open:
        result = await desk_actions.claim_ticket(services, ticket, agent)
        await query.answer(result.notice[:200])
        if result.ok and result.changed:
            await desk_of(update, context).post(ticket, result.notice)
    elif action == "close" and ticket.is_open:
        result = await desk_actions.close_ticket(services, desk_of(update, context), ticket, agent)
        await query.answer(result.notice[:200])
    else:
        await query.answer(
            persona.staff_message("ticket_status", ticket_id=ticket.id, status=ticket.status)
        )


async def _staff_notice(update: Update, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
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
