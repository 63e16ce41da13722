"""Telling a waiting customer the truth, and closing tickets the customer has left.

Two things the reminder sweep (``bot.sla``) also does on each run, so there is one
scheduler for everything time-driven:

- a ticket nobody has taken ``support.unclaimed_notice_minutes`` after it opened
  tells its customer once that it is still waiting, and how long it may take:
  within office hours the team's first-reply target, outside them when the team
  is back (``bot.office_hours``);
- a ticket whose last word was the team's, with no customer message for
  ``support.auto_close_hours``, closes itself as "auto_closed", with a note for
  staff and a short message to the customer.

Each is recorded (a ticket event, or the ticket's resolution), so a restart
neither repeats nor forgets one. No Telegram here: the caller passes functions
that reach the customer and the ticket's place.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.customer_language import SpokenLanguages
from bot.knowledge.persona import Persona
from bot.office_hours import is_open, next_open
from bot.settings import Settings
from bot.sla import describe_wait
from bot.store.conversations import ConversationStore
from bot.store.tickets import Ticket, TicketStore

log = logging.getLogger(__name__)

ToCustomer = Callable[[Ticket, str], Awaitable[object]]
EndTicket = Callable[[Ticket, str], Awaitable[object]]


async def sweep_customers(
    settings: Settings,
    tickets: TicketStore,
    conversations: ConversationStore,
    persona: Persona,
    to_customer: ToCustomer,
    end_ticket: EndTicket,
    now: datetime,
    languages: SpokenLanguages | None = None,
) -> tuple[list[int], list[int]]:
    """Send the notices and close the tickets due at ``now``; returns both lists of ids.

    ``languages`` says which language each customer last wrote in, for their notices."""

    async def speaking_to(ticket: Ticket) -> Persona:
        if languages is None:
            return persona
        return await languages.speaking_to(persona, ticket.chat_id)

    noticed = await _unclaimed_notices(settings, tickets, speaking_to, to_customer, now)
    closed = await _auto_close(
        settings, tickets, conversations, speaking_to, to_customer, end_ticket, now
    )
    return noticed, closed


async def _unclaimed_notices(
    settings: Settings,
    tickets: TicketStore,
    speaking_to: Callable[[Ticket], Awaitable[Persona]],
    to_customer: ToCustomer,
    now: datetime,
) -> list[int]:
    minutes = settings.support.unclaimed_notice_minutes
    if minutes <= 0:
        return []
    cutoff = _stored(now - timedelta(minutes=minutes))
    rows = await tickets.db.fetchall(
        "SELECT t.* FROM tickets t WHERE t.status = 'open' AND t.created_at <= ? "
        "AND NOT EXISTS (SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id "
        "AND e.event = 'unclaimed_notice') ORDER BY t.id",
        (cutoff,),
    )
    sent = []
    for row in rows:
        ticket = Ticket.from_row(row)
        waited = describe_wait(now - datetime.fromisoformat(ticket.created_at))
        persona = await speaking_to(ticket)
        if is_open(settings, now):
            target = settings.support.sla_minutes or minutes
            text = persona.message(
                "unclaimed_notice",
                ticket_id=ticket.id,
                waited=waited,
                expected=describe_wait(timedelta(minutes=target)),
            )
        else:
            back = next_open(settings, now).astimezone(_zone(settings))
            text = persona.message(
                "unclaimed_notice_closed",
                ticket_id=ticket.id,
                waited=waited,
                back=persona.moment(back),
            )
        # Recorded first: a notice that fails to send is not worth sending twice.
        await tickets.add_event(
            ticket.id, "unclaimed_notice", actor="bot", at=now.isoformat(timespec="milliseconds")
        )
        try:
            await to_customer(ticket, text)
        except Exception as error:
            log.info("could not tell the customer of ticket #%s: %s", ticket.id, error)
            continue
        sent.append(ticket.id)
    return sent


async def _auto_close(
    settings: Settings,
    tickets: TicketStore,
    conversations: ConversationStore,
    speaking_to: Callable[[Ticket], Awaitable[Persona]],
    to_customer: ToCustomer,
    end_ticket: EndTicket,
    now: datetime,
) -> list[int]:
    hours = settings.support.auto_close_hours
    if hours <= 0:
        return []
    cutoff = _stored(now - timedelta(hours=hours))
    rows = await tickets.db.fetchall(
        "SELECT t.* FROM tickets t WHERE t.status != 'resolved' "
        "AND (SELECT MAX(m.id) FROM messages m WHERE m.ticket_id = t.id AND m.role = 'staff') "
        "> COALESCE((SELECT MAX(m.id) FROM messages m WHERE m.ticket_id = t.id "
        "AND m.role = 'customer'), 0) "
        "AND (SELECT MAX(m.created_at) FROM messages m WHERE m.ticket_id = t.id "
        "AND m.role = 'staff') <= ? ORDER BY t.id",
        (cutoff,),
    )
    closed = []
    for row in rows:
        ticket = Ticket.from_row(row)
        if not await tickets.resolve(ticket.id, "bot", "auto_closed"):
            continue
        await conversations.end_conversation(ticket.chat_id, "ticket_auto_closed")
        # Staff texts are the same in every language the persona speaks.
        persona = await speaking_to(ticket)
        note = persona.staff_message("auto_closed", ticket_id=ticket.id, hours=hours)
        for step in (
            end_ticket(ticket, note),
            to_customer(ticket, persona.message("auto_closed", ticket_id=ticket.id)),
        ):
            try:
                await step
            except Exception as error:  # resolved either way
                log.info("could not announce the closing of ticket #%s: %s", ticket.id, error)
        closed.append(ticket.id)
    return closed


def _stored(moment: datetime) -> str:
    """The database holds UTC times as ISO text (``utcnow``); compare in the same form."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.support.office_hours.timezone)
