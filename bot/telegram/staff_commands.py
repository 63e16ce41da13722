"""Staff commands and the buttons on a ticket's card, in the staff group.

Only commands from the configured staff chat reach these handlers (the filter is
set where they are registered), and every button press is checked again here: a
button's data alone never proves who pressed it or where. What a command does to
a ticket lives in ``bot.desk_actions``; these handlers only say the result where
the command was given.
"""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import ContextTypes

from bot import desk_actions
from bot.telegram.bot_data import desk_of, services_of
from bot.telegram.desk import card_press
from bot.telegram.record_ids import is_ticket_argument
from bot.telegram.staff_context import StaffContext, about_ticket, agent_of, staff_notice
from bot.telegram.ticket_views import ticket_details, ticket_list_line


@about_ticket(by_id=False)
async def note(update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext) -> None:
    """/note text: an internal note on the ticket; the customer never sees it."""
    text = " ".join(scene.args).strip()
    if scene.ticket is None:
        persona = scene.services.knowledge.current.persona
        await staff_notice(update, context, persona.staff_message("note_usage"))
        return
    result = await desk_actions.add_note(scene.services, scene.ticket, scene.agent, text)
    await staff_notice(update, context, result.notice)


async def list_tickets(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/tickets [TERM]: open tickets oldest first, or every ticket matching TERM."""
    services = services_of(context)
    persona = services.knowledge.current.persona
    term = " ".join(context.args or []).strip()
    if term:
        tickets = await services.tickets.search(term)
        if not tickets:
            await staff_notice(update, context, persona.staff_message("search_none", term=term))
            return
        heading = persona.staff_message("search_results", count=len(tickets), term=term)
    else:
        tickets = await services.tickets.list("unresolved")
        if not tickets:
            await staff_notice(update, context, persona.staff_message("no_open_tickets"))
            return
        heading = persona.staff_message("open_tickets", count=len(tickets))
    lines = [heading]
    for t in tickets:
        customer = await services.conversations.get_customer(t.chat_id)
        lines.append(ticket_list_line(t, customer, persona))
    await staff_notice(update, context, "\n".join(lines))


@about_ticket()
async def show_ticket(
    update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext
) -> None:
    """/ticket ID: the ticket's details and latest messages."""
    services, ticket = scene.services, scene.ticket
    if ticket is None:
        await _no_ticket(update, context, scene, "ticket")
        return
    persona = services.knowledge.current.persona
    customer = await services.conversations.get_customer(ticket.chat_id)
    transcript = await services.tickets.transcript(ticket)
    await staff_notice(update, context, ticket_details(ticket, customer, transcript, persona))


@about_ticket()
async def claim(update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext) -> None:
    """/claim [ID] [force]: take the ticket; someone else's only with ``force``."""
    ticket = scene.ticket
    if ticket is None or not ticket.is_open:
        await _no_ticket(update, context, scene, "claim")
        return
    force = any(a.lower() == "force" for a in scene.args)
    result = await desk_actions.claim_ticket(scene.services, ticket, scene.agent, force=force)
    await staff_notice(update, context, result.notice)


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
        await _no_ticket(update, context, scene, command)
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
        await staff_notice(update, context, result.notice)


@about_ticket()
async def reopen(update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext) -> None:
    """/reopen: the customer is handed to staff again."""
    if scene.ticket is None:
        await _no_ticket(update, context, scene, "reopen")
        return
    result = await desk_actions.reopen_ticket(scene.services, scene.desk, scene.ticket, scene.agent)
    await staff_notice(update, context, result.notice)


@about_ticket()
async def faq(update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext) -> None:
    """/faq ID: send that FAQ entry's answer to the customer, as a staff reply."""
    persona = scene.services.knowledge.current.persona
    args = [a for a in scene.args if not is_ticket_argument(a)]
    if scene.ticket is None or not args:
        await staff_notice(update, context, persona.staff_message("faq_usage"))
        return
    result = await desk_actions.send_faq_answer(
        scene.services, scene.desk, scene.ticket, args[0], scene.agent
    )
    await staff_notice(update, context, result.notice)


async def _no_ticket(
    update: Update, context: ContextTypes.DEFAULT_TYPE, scene: StaffContext, command: str
) -> None:
    """The command found no ticket to act on: say how to name one."""
    persona = scene.services.knowledge.current.persona
    await staff_notice(update, context, persona.staff_message("no_ticket", command=command))


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
