"""The knowledge gap page's HTML: questions the FAQ could not answer, grouped.

Each group shows what customers asked, what staff answered them, the closest FAQ
entry and a suggested new one, so an admin can judge a draft before adding it.
Only drawing: ``bot.gaps`` finds the groups.
"""

from __future__ import annotations

from typing import Any

from bot.console_web.overview_page import period_links
from bot.console_web.templates import esc, panel


def gaps_body(groups: list[Any], days: int) -> str:
    downloads = (
        f'<p>Drafts for the FAQ of these gaps: <a href="/console/gaps/draft.yaml?days={days}">'
        f'FAQ entries (YAML)</a> · <a href="/console/gaps/eval.yaml?days={days}">'
        "eval cases (YAML)</a></p>"
    )
    sections = [_group(number, group) for number, group in enumerate(groups, 1)]
    return (
        f'<p class="period">Period: {period_links("/console/gaps", days)}</p>'
        + downloads
        + ("".join(sections) or "<p>No knowledge gaps in this period.</p>")
    )


def _group(number: int, group: Any) -> str:
    closest = group.closest_faq
    said = "".join(
        f'<div class="msg customer"><div class="meta">{esc(m.reason)} · '
        f"{esc(m.language or '?')} · {esc(m.at[:16].replace('T', ' '))}"
        + (
            f' · <a href="/console/tickets/{int(m.ticket_id)}">#{int(m.ticket_id)}</a>'
            if m.ticket_id
            else ""
        )
        + f'</div><div class="text">{esc(m.text)}</div></div>'
        for m in group.messages[:5]
    )
    staff = "".join(
        f'<div class="msg staff"><div class="text">{esc(a)}</div></div>'
        for a in group.staff_answers[:3]
    )
    draft = group.draft or {}
    return panel(
        f"{number}. {group.size} messages from {group.customers} customers",
        f'<p class="meta">languages {esc(", ".join(group.languages) or "?")} · '
        f"last seen {esc(group.last_seen[:16].replace('T', ' '))} · closest FAQ "
        + (
            f"{esc(closest.get('id'))} ({float(closest.get('score', 0)):.2f})"
            if closest
            else "none"
        )
        + f"</p>{said}{staff}"
        f"<p><b>Suggested entry</b> {esc(draft.get('id', ''))}: "
        f"{esc(draft.get('question', ''))}</p>",
    )
