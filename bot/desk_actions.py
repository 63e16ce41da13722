"""What staff do to a ticket (claim, reply, canned FAQ answer, hand back, close, reopen, note).

No Telegram here: the staff group's handlers and the command line call the
same functions, so a ticket changes the same way whichever door staff use.
Where people must be told, a ``DeskChannel`` carries the words; without one
(the command line) only the records change, and the result says so.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Protocol

from bot.knowledge.persona import Persona
from bot.outcome import RATING_PREFIX, Button
from bot.services import Services
from bot.store.conversations import AnswerAudit
from bot.store.tickets import Ticket


class CustomerUnreachable(Exception):
    """A message to the customer was not delivered; ``blocked`` when they blocked the bot."""

    def __init__(self, reason: str, *, blocked: bool = False):
        super().__init__(reason)
        self.blocked = blocked


class DeskChannel(Protocol):
    """How actions reach the customer and the ticket's place among staff."""

    async def to_customer(
        self, ticket: Ticket, text: str, buttons: tuple[Button, ...] = ()
    ) -> int | None:
        """Send a text; returns the delivered message's id. Raises CustomerUnreachable."""
        ...

    async def to_staff(self, ticket: Ticket, text: str) -> None:
        """Post in the ticket's topic, or under its card."""
        ...

    async def ticket_closed(self, ticket: Ticket) -> None:
        """The ticket's place is done with (its forum topic closes)."""
        ...

    async def ticket_reopened(self, ticket: Ticket) -> None: ...


@dataclass(frozen=True)
class Agent:
    """The staff member acting."""

    id: int
    name: str
    role: str = "staff"  # "cli" for the command line

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.id}"


@dataclass(frozen=True)
class ActionResult:
    """``notice`` is what to tell the agent who acted (already in the persona's words)."""

    ok: bool
    notice: str
    delivered: bool = True  # False: the customer was not told (no channel, or unreachable)
    changed: bool = True  # False: nothing to announce (e.g. claiming one's own ticket)


async def _speaking_to(services: Services, ticket: Ticket) -> Persona:
    """The persona in the language the ticket's customer last wrote in, when known."""
    persona = services.knowledge.current.persona
    return await services.core.languages.speaking_to(persona, ticket.chat_id)


async def claim_ticket(
    services: Services, ticket: Ticket, agent: Agent, *, force: bool = False
) -> ActionResult:
    """Take a ticket; someone else's only with ``force``, which is recorded as a takeover."""
    persona = services.knowledge.current.persona
    before = await services.tickets.claim(ticket.id, agent.id, agent.name, force=force)
    if before is None:
        return ActionResult(False, persona.staff_message("no_ticket", command="claim"))
    if before.assignee_id == agent.id:
        notice = persona.staff_message("claimed_already_yours", ticket_id=ticket.id)
        return ActionResult(True, notice, changed=False)
    holder = before.assignee_name or str(before.assignee_id)
    if before.is_claimed and not force:
        return ActionResult(
            False, persona.staff_message("claim_refused", ticket_id=ticket.id, assignee=holder)
        )
    if before.is_claimed:
        text = persona.staff_message(
            "taken_over", ticket_id=ticket.id, agent=agent.name, assignee=holder
        )
        return ActionResult(True, text)
    return ActionResult(
        True, persona.staff_message("claimed", ticket_id=ticket.id, agent=agent.name)
    )


async def reply_prefix(services: Services, ticket: Ticket, agent: Agent) -> str:
    """What goes before staff text to the customer: the team's prefix, in the customer's
    language, or the agent's name."""
    if services.settings.escalation.copy_staff_names:
        return f"{agent.name}: "
    return (await _speaking_to(services, ticket)).messages.get("staff_reply_prefix", "")


async def record_staff_reply(
    services: Services,
    ticket: Ticket,
    agent: Agent,
    text: str | None,
    *,
    kind: str = "text",
    telegram_message_id: int | None = None,
    audit: AnswerAudit | None = None,
) -> None:
    """A staff message reached the customer: store it and count it as a response."""
    await services.conversations.add_message(
        ticket.chat_id,
        "staff",
        text,
        kind=kind,
        telegram_message_id=telegram_message_id,
        ticket_id=ticket.id,
        audit=audit,
    )
    await services.tickets.staff_replied(ticket.id, agent.id, agent.name)


async def send_staff_text(
    services: Services,
    channel: DeskChannel,
    ticket: Ticket,
    agent: Agent,
    text: str,
    audit: AnswerAudit | None = None,
) -> tuple[ActionResult, int | None]:
    """Send a staff member's text to the customer and record it; the delivered id too."""
    persona = services.knowledge.current.persona
    if not ticket.is_open:
        return ActionResult(
            False, persona.staff_message("resolved_reply", ticket_id=ticket.id)
        ), None
    try:
        sent_id = await channel.to_customer(
            ticket, await reply_prefix(services, ticket, agent) + text
        )
    except CustomerUnreachable as error:
        return await _undelivered(services, ticket, error), None
    await record_staff_reply(
        services, ticket, agent, text, telegram_message_id=sent_id, audit=audit
    )
    return ActionResult(True, ""), sent_id


async def send_faq_answer(
    services: Services, channel: DeskChannel, ticket: Ticket, faq_id: str, agent: Agent
) -> ActionResult:
    """A canned reply: the FAQ entry's answer goes to the customer as the agent's message."""
    knowledge = services.knowledge.current
    persona = knowledge.persona
    entries = {entry.id: entry for entry in knowledge.faq.entries}
    entry = entries.get(faq_id)
    if entry is None:
        close = difflib.get_close_matches(faq_id, list(entries), n=5, cutoff=0.5)
        close += [i for i in entries if faq_id.lower() in i.lower() and i not in close]
        shown = ", ".join(close[:5]) or "-"
        return ActionResult(
            False, persona.staff_message("faq_unknown", faq_id=faq_id, suggestions=shown)
        )
    audit = AnswerAudit(path="canned", faq_ids=(entry.id,), knowledge_version=knowledge.version)
    result, _ = await send_staff_text(
        services, channel, ticket, agent, entry.answer.strip(), audit=audit
    )
    if not result.ok or not result.delivered:
        return result
    return ActionResult(
        True, persona.staff_message("faq_sent", ticket_id=ticket.id, faq_id=entry.id)
    )


async def close_ticket(
    services: Services, channel: DeskChannel | None, ticket: Ticket, agent: Agent
) -> ActionResult:
    """Resolve, tell staff and the customer, ask for a rating, start a fresh conversation.

    Ending the conversation keeps the handoff exchange out of the model's
    context, so the bot does not pick the old problem up again and loop.
    Staff are told in the ticket's place before its topic closes, because a
    closed topic refuses new messages.
    """
    persona = await _speaking_to(services, ticket)
    done = await _resolve(services, channel, ticket, agent, "closed", resolution=None)
    if done is not None:
        return done
    rating = tuple(Button("⭐" * n, f"{RATING_PREFIX}:{ticket.id}:{n}") for n in range(1, 6))
    delivered = await _tell_customer(
        services,
        channel,
        ticket,
        (persona.message("ticket_closed", ticket_id=ticket.id), ()),
        (persona.message("rating_prompt", ticket_id=ticket.id), rating),
    )
    notice = persona.staff_message("closed", ticket_id=ticket.id, agent=agent.name)
    return ActionResult(True, notice, delivered)


async def hand_back(
    services: Services, channel: DeskChannel | None, ticket: Ticket, agent: Agent
) -> ActionResult:
    """Give the customer back to the bot without a rating: resolved as a handback.

    The bot answers the customer's next message itself, in a fresh
    conversation, and the customer is told so.
    """
    persona = await _speaking_to(services, ticket)
    done = await _resolve(services, channel, ticket, agent, "handed_back", resolution="handback")
    if done is not None:
        return done
    delivered = await _tell_customer(
        services, channel, ticket, (persona.message("handed_back", ticket_id=ticket.id), ())
    )
    notice = persona.staff_message("handed_back", ticket_id=ticket.id, agent=agent.name)
    return ActionResult(True, notice, delivered)


async def reopen_ticket(
    services: Services, channel: DeskChannel | None, ticket: Ticket, agent: Agent
) -> ActionResult:
    """Hand the customer to staff again, unless they already have another open ticket."""
    persona = services.knowledge.current.persona
    if not await services.tickets.reopen(ticket.id, agent.actor):
        return ActionResult(False, persona.staff_message("reopen_refused", ticket_id=ticket.id))
    if channel is not None:
        await channel.ticket_reopened(ticket)
    return ActionResult(True, persona.staff_message("reopened", ticket_id=ticket.id))


async def add_note(services: Services, ticket: Ticket, agent: Agent, text: str) -> ActionResult:
    """An internal note: stored with the transcript, never sent to the customer."""
    persona = services.knowledge.current.persona
    if not text.strip():
        return ActionResult(False, persona.staff_message("note_usage"))
    await services.conversations.add_message(ticket.chat_id, "note", text, ticket_id=ticket.id)
    await services.tickets.add_event(ticket.id, "note", actor=agent.actor, detail=text)
    return ActionResult(True, persona.staff_message("note_saved", ticket_id=ticket.id))


async def _resolve(
    services: Services,
    channel: DeskChannel | None,
    ticket: Ticket,
    agent: Agent,
    staff_key: str,
    resolution: str | None,
) -> ActionResult | None:
    """Resolve and close the ticket's place; an ActionResult only when it was already resolved."""
    persona = services.knowledge.current.persona
    if not await services.tickets.resolve(ticket.id, agent.actor, resolution):
        return ActionResult(False, persona.staff_message("already_resolved", ticket_id=ticket.id))
    await services.conversations.end_conversation(ticket.chat_id, f"ticket_{staff_key}")
    if channel is not None:
        await channel.to_staff(
            ticket, persona.staff_message(staff_key, ticket_id=ticket.id, agent=agent.name)
        )
        await channel.ticket_closed(ticket)
    return None


async def _tell_customer(
    services: Services,
    channel: DeskChannel | None,
    ticket: Ticket,
    *texts: tuple[str, tuple[Button, ...]],
) -> bool:
    if channel is None:
        return False
    try:
        for text, buttons in texts:
            await channel.to_customer(ticket, text, buttons)
    except CustomerUnreachable as error:
        if error.blocked:
            await services.conversations.mark_blocked(ticket.chat_id)
        return False
    return True


async def _undelivered(
    services: Services, ticket: Ticket, error: CustomerUnreachable
) -> ActionResult:
    persona = services.knowledge.current.persona
    if error.blocked:
        await services.conversations.mark_blocked(ticket.chat_id)
        return ActionResult(False, persona.staff_message("customer_blocked"), delivered=False)
    return ActionResult(False, persona.staff_message("not_delivered", error=str(error)), False)
