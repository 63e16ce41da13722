"""Reminders for tickets that wait too long for a first reply from the team.

A ticket that no staff message has reached ``support.sla_minutes`` after it
opened gets one reminder in the staff group, then at most one every
``support.sla_repeat_minutes`` while it still waits. Outside office hours
nothing is posted (unless ``remind_outside_office_hours``): a reminder at
3 a.m. only teaches people to mute the group. Each reminder is a ticket
event, so a restart neither repeats nor forgets one.

No Telegram here: ``sweep`` takes the clock and a function that posts, so
tests drive it with any ``now``; the Telegram side calls it from PTB's JobQueue.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.knowledge.persona import Persona
from bot.office_hours import is_open
from bot.settings import Settings
from bot.store.conversations import ConversationStore
from bot.store.tickets import Ticket, TicketStore

log = logging.getLogger(__name__)

Post = Callable[[Ticket, str], Awaitable[object]]


@dataclass(frozen=True)
class Reminder:
    ticket: Ticket
    waited: timedelta


def due(
    waiting: list[tuple[Ticket, str | None]], settings: Settings, now: datetime
) -> list[Reminder]:
    """Which waiting tickets need a reminder at ``now`` (tickets with their last reminder)."""
    support = settings.support
    if support.sla_minutes <= 0:
        return []
    if not support.remind_outside_office_hours and not is_open(settings, now):
        return []
    limit = timedelta(minutes=support.sla_minutes)
    repeat = timedelta(minutes=support.sla_repeat_minutes)
    found = []
    for ticket, last_reminder in waiting:
        waited = now - datetime.fromisoformat(ticket.created_at)
        if waited < limit:
            continue
        if last_reminder is not None:
            since = now - datetime.fromisoformat(last_reminder)
            if support.sla_repeat_minutes <= 0 or since < repeat:
                continue
        found.append(Reminder(ticket, waited))
    return found


def describe_wait(waited: timedelta) -> str:
    minutes = int(waited.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d"


async def sweep(
    settings: Settings,
    tickets: TicketStore,
    conversations: ConversationStore,
    persona: Persona,
    post: Post,
    now: datetime,
) -> list[Reminder]:
    """Post the reminders due at ``now`` and record each; returns what was posted."""
    reminders = due(await tickets.waiting_for_first_response(), settings, now)
    for reminder in reminders:
        ticket = reminder.ticket
        customer = await conversations.get_customer(ticket.chat_id)
        text = persona.staff_message(
            "sla_reminder",
            ticket_id=ticket.id,
            customer=customer.display_name if customer else ticket.chat_id,
            reason=persona.reason_name(ticket.reason),
            waited=describe_wait(reminder.waited),
        )
        await post(ticket, text)
        await tickets.add_event(
            ticket.id,
            "sla_reminder",
            actor="bot",
            detail=describe_wait(reminder.waited),
            at=now.isoformat(timespec="milliseconds"),
        )
    return reminders
