"""The HTML of the ticket list and of one ticket: what staff read to pick a case up.

Only drawing, from what ``queries`` read; every value from the database goes
through ``esc``. On a bot answer the transcript shows what the answer was built
from (path, FAQ entries, knowledge version, model), so staff can see why it said it.
"""

from __future__ import annotations

from typing import Any

from bot.console_web.queries import TicketFilter, TicketRow
from bot.console_web.templates import card, esc, panel, select
from bot.store.ticket_record import Ticket


def ticket_list_body(
    chosen: TicketFilter, rows: list[TicketRow], reasons: list[str], languages: list[str], csrf: str
) -> str:
    return _filter_form(chosen, reasons, languages, csrf) + _ticket_table(rows)


def _filter_form(chosen: TicketFilter, reasons: list[str], languages: list[str], csrf: str) -> str:
    return (
        '<form class="filters" method="post" action="/console/tickets">'
        f'<input type="hidden" name="csrf" value="{esc(csrf)}">'
        + select("status", ["open", "active", "resolved"], chosen.status)
        + select("reason", reasons, chosen.reason)
        + select("language", languages, chosen.language)
        + f'<label>from<input type="date" name="since" value="{esc(chosen.since)}"></label>'
        + f'<label>to<input type="date" name="until" value="{esc(chosen.until)}"></label>'
        + f'<label>search<input type="search" name="q" value="{esc(chosen.text)}"></label>'
        "<button>Filter</button></form>"
    )


def _ticket_table(rows: list[TicketRow]) -> str:
    if not rows:
        return "<p>No tickets match.</p>"
    lines = "".join(
        f'<tr><td><a href="/console/tickets/{r.ticket.id}">#{r.ticket.id}</a></td>'
        f"<td>{esc(r.ticket.status)}</td><td>{esc(r.ticket.reason)}</td>"
        f"<td>{esc(r.customer)}</td><td>{esc(r.language)}</td>"
        f"<td>{esc(r.ticket.created_at[:16].replace('T', ' '))}</td>"
        f"<td>{esc((r.ticket.summary or '')[:120])}</td></tr>"
        for r in rows
    )
    return (
        '<div class="table"><table><tr><th>Ticket</th><th>Status</th><th>Reason</th>'
        "<th>Customer</th><th>Language</th><th>Opened (UTC)</th><th>Summary</th></tr>"
        f"{lines}</table></div>"
    )


def ticket_body(
    ticket: Ticket, name: str, messages: list[dict[str, Any]], events: list[dict[str, Any]]
) -> str:
    """The ticket's facts as cards, then its transcript, then its event log."""
    head = (
        '<div class="cards">'
        + card("Status", ticket.status)
        + card("Reason", ticket.reason)
        + card("Customer", name)
        + card("Assignee", ticket.assignee_name or "–")
        + card("Rating", str(ticket.rating) if ticket.rating else "–")
        + card("Opened (UTC)", ticket.created_at[:16].replace("T", " "))
        + "</div>"
    )
    log_rows = "".join(
        f"<tr><td>{esc(e['created_at'][:16].replace('T', ' '))}</td><td>{esc(e['event'])}"
        f"</td><td>{esc(e['reason'] or '')}</td><td>{esc(e['actor'] or '')}</td></tr>"
        for e in events
    )
    return (
        head
        + panel("Transcript", "".join(map(_message, messages)) or "<p>No messages kept.</p>")
        + panel("Events", f'<div class="table"><table>{log_rows}</table></div>')
    )


def _message(m: dict[str, Any]) -> str:
    meta = f"{esc(m['role'])} · {esc(m['created_at'][:19].replace('T', ' '))} UTC"
    if m["kind"] != "text":
        meta += f" · {esc(m['kind'])}"
    if m["role"] == "bot" and m["path"]:
        meta += _answer_source(m)
    text = m["text"] if m["text"] is not None else "(text removed)"
    return (
        f'<div class="msg {esc(m["role"])}"><div class="meta">{meta}</div>'
        f'<div class="text">{esc(text)}</div></div>'
    )


def _answer_source(m: dict[str, Any]) -> str:
    """What a bot answer came from: its path, the FAQ entries and how sure, the model."""
    meta = f" · via {esc(m['path'])}"
    if m["faq_ids"]:
        meta += f" · FAQ {esc(m['faq_ids'].replace(',', ', '))}"
        if m["faq_confidence"] is not None:
            meta += f" ({m['faq_confidence']:.2f})"
    if m["knowledge_version"]:
        meta += f" · knowledge {esc(m['knowledge_version'])}"
    if m["model"]:
        meta += f" · {esc(m['model'])}"
    return meta
