"""What staff read about a ticket: its card, topic title and one-line summaries.

Built as plain text, apart from any send, so that the wording staff triage by can be
read and changed in one place; every string comes from the persona's staff texts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.knowledge.persona import Persona
from bot.outcome import TicketContext
from bot.store.conversations import Customer
from bot.store.tickets import Ticket
from bot.telegram.markdown import plain_text


def topic_title(ticket: Ticket, customer_name: str, persona: Persona) -> str:
    """``#12 · Anna · Asked for a person``: Telegram allows 128 characters."""
    return f"#{ticket.id} · {customer_name} · {persona.reason_name(ticket.reason)}"[:128]


def ticket_card(
    ticket: Ticket, context: TicketContext, persona: Persona, earlier: list[Ticket] = ()
) -> str:
    """Plain text: staff read it on phones, and it must never fail to parse."""
    customer = context.customer
    who = customer.display_name
    if customer.username:
        who += f" (@{customer.username})"
    say = persona.staff_message
    lines = [
        say("card_title", ticket_id=ticket.id, reason=persona.reason_name(context.reason)),
        say("card_customer", customer=who, chat_id=customer.chat_id),
    ]
    # The language to reply in: the one the customer writes, else their app's.
    if language := context.writes_in or customer.language:
        lines.append(say("card_language", language=language))
    lines.append(say("card_summary", summary=context.summary))
    if context.last_messages:
        lines.append("")
        lines.append(say("card_last_messages"))
        for turn in context.last_messages[-6:]:
            who_said = "👤" if turn.role == "customer" else "🤖"
            # The bot's answers are Markdown: the card shows their words, not the asterisks.
            said = plain_text(turn.text) if turn.role == "bot" else turn.text
            lines.append(f"{who_said} {said[:300]}")
    if context.faq_matches:
        lines.append("")
        found = ", ".join(f"{m.id} ({m.confidence:.2f})" for m in context.faq_matches)
        lines.append(say("card_faq_found", matches=found))
    if earlier:
        lines.append("")
        lines.append(persona.staff_message("earlier_tickets", count=len(earlier)))
        lines += [ticket_line(t, persona) for t in earlier]
    lines.append("")
    lines.append(persona.staff_message("card_hint"))
    return "\n".join(lines)


def ticket_line(ticket: Ticket, persona: Persona) -> str:
    """One earlier ticket: number, date, reason, status."""
    return (
        f"#{ticket.id} · {ticket.created_at[:10]} · "
        f"{persona.reason_name(ticket.reason)} · {ticket.status}"
    )


def ticket_list_line(ticket: Ticket, customer: Customer | None, persona: Persona) -> str:
    """One ticket in /tickets: open ones say how long they have waited, others their date."""
    name = customer.display_name if customer else str(ticket.chat_id)
    if customer and customer.username:
        name += f" (@{customer.username})"
    who = f", {ticket.assignee_name}" if ticket.assignee_name else ""
    when = (
        f"waiting {waiting_since(ticket.created_at)}" if ticket.is_open else ticket.created_at[:10]
    )
    return f"#{ticket.id} · {ticket.status} · {persona.reason_name(ticket.reason)} · {name} · {when}{who}"


def ticket_details(
    ticket: Ticket, customer: Customer | None, transcript: list[dict[str, Any]], persona: Persona
) -> str:
    """/ticket: the ticket's details, then its latest 15 messages, each marked by who wrote it."""
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
    return "\n".join(lines)


def waiting_since(timestamp: str) -> str:
    try:
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return "?"
    minutes = int((datetime.now(UTC) - then).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    return f"{minutes // 1440} d"


def voice_note(
    persona: Persona, name: str, kind: str, transcript: str | None, outcome: str | None
) -> str | None:
    """What staff read with a customer's voice note: its transcript, or that it could not
    be made. None for other media, and for audio nobody tried to transcribe."""
    if kind not in ("voice", "audio"):
        return None
    if transcript:
        return persona.message("staff_voice_transcript", name=name, transcript=transcript)
    if outcome and outcome != "relayed":
        return persona.message("staff_voice_untranscribed", name=name)
    return None
