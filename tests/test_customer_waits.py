"""Waiting customers hear the truth once, and tickets the customer left close themselves.

The sweep runs on a real SQLite file with a clock the test sets, as in tests/test_sla.py.
"""

from __future__ import annotations

from datetime import timedelta

from bot.customer_language import SpokenLanguages
from bot.customer_waits import sweep_customers
from bot.knowledge.language import warm_up
from bot.knowledge.loader import load_persona
from bot.store.conversations import Customer
from bot.store.db import Database
from bot.store.tickets import TicketStore
from tests.helpers import (
    REPO,
    SATURDAY_10_UTC,
    TUESDAY_10_UTC,
    opened_at,
    rows,
    support_settings,
)

PERSONA = load_persona(REPO / "config" / "persona.yaml")


class Channel:
    def __init__(self) -> None:
        self.customer: list[tuple[int, str]] = []
        self.staff: list[tuple[int, str]] = []

    async def to_customer(self, ticket, text: str) -> None:
        self.customer.append((ticket.id, text))

    async def ended(self, ticket, note: str) -> None:
        self.staff.append((ticket.id, note))


def speaking(text: str) -> SpokenLanguages:
    """The languages heard from customers, chat 11 (the test tickets') having written ``text``."""
    languages = SpokenLanguages()
    warm_up()
    languages.heard(Customer(chat_id=11), text)
    return languages


async def run(config, db, tickets, conversations, channel, now, languages=None):
    return await sweep_customers(
        config, tickets, conversations, PERSONA, channel.to_customer, channel.ended, now, languages
    )


async def test_an_unclaimed_ticket_tells_the_customer_once(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    ticket_id = await opened_at(db, tickets, TUESDAY_10_UTC)
    config = support_settings(unclaimed_notice_minutes=15, sla_minutes=30, auto_close_hours=0)
    channel = Channel()
    assert await run(config, db, tickets, conversations, channel, TUESDAY_10_UTC) == ([], [])
    later = TUESDAY_10_UTC + timedelta(minutes=16)
    assert await run(config, db, tickets, conversations, channel, later) == ([ticket_id], [])
    assert len(channel.customer) == 1
    text = channel.customer[0][1]
    assert f"#{ticket_id}" in text and "16 min" in text and "30 min" in text
    assert "nobody has picked it up" in text
    again = later + timedelta(hours=2)
    assert await run(config, db, tickets, conversations, channel, again) == ([], [])
    assert len(channel.customer) == 1, "told once"


async def test_outside_office_hours_the_notice_says_when_staff_are_back(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    await opened_at(db, tickets, SATURDAY_10_UTC)
    config = support_settings(unclaimed_notice_minutes=15, auto_close_hours=0)
    channel = Channel()
    await run(config, db, tickets, conversations, channel, SATURDAY_10_UTC + timedelta(hours=1))
    assert "Monday 09:00" in channel.customer[0][1]


async def test_a_chinese_customer_hears_in_chinese_when_staff_are_back(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    ticket_id = await opened_at(db, tickets, SATURDAY_10_UTC)
    languages = speaking("我的包裹已经一个星期了还没到，请帮我查一下")
    config = support_settings(unclaimed_notice_minutes=15, auto_close_hours=0)
    channel = Channel()
    later = SATURDAY_10_UTC + timedelta(hours=1)
    await run(config, db, tickets, conversations, channel, later, languages)
    text = channel.customer[0][1]
    assert f"#{ticket_id}" in text and "周一 09:00" in text
    assert "Monday" not in text and "waiting" not in text


async def test_a_claimed_ticket_gets_no_notice_and_zero_is_off(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    ticket_id = await opened_at(db, tickets, TUESDAY_10_UTC)
    later = TUESDAY_10_UTC + timedelta(hours=1)
    channel = Channel()
    off = support_settings(unclaimed_notice_minutes=0, auto_close_hours=0)
    assert await run(off, db, tickets, conversations, channel, later) == ([], [])
    await tickets.claim(ticket_id, 501, "Sam")
    on = support_settings(unclaimed_notice_minutes=15, auto_close_hours=0)
    assert await run(on, db, tickets, conversations, channel, later) == ([], [])
    assert channel.customer == []


async def _staff_said(db: Database, conversations, ticket_id: int, role: str, when) -> None:
    message = await conversations.add_message(11, role, f"{role} text", ticket_id=ticket_id)
    await db.execute("UPDATE messages SET created_at = ? WHERE id = ?", (when.isoformat(), message))


async def test_a_ticket_left_after_the_teams_reply_closes_itself(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    ticket_id = await opened_at(db, tickets, TUESDAY_10_UTC)
    await tickets.staff_replied(ticket_id, 501, "Sam")
    await _staff_said(db, conversations, ticket_id, "customer", TUESDAY_10_UTC)
    await _staff_said(db, conversations, ticket_id, "staff", TUESDAY_10_UTC + timedelta(hours=1))
    config = support_settings(unclaimed_notice_minutes=0, auto_close_hours=48)
    channel = Channel()
    early = TUESDAY_10_UTC + timedelta(hours=48)
    assert await run(config, db, tickets, conversations, channel, early) == ([], [])
    late = TUESDAY_10_UTC + timedelta(hours=49, minutes=1)
    assert await run(config, db, tickets, conversations, channel, late) == ([], [ticket_id])
    assert [t for t, _ in channel.staff] == [ticket_id] and "48 h" in channel.staff[0][1]
    assert f"#{ticket_id}" in channel.customer[0][1]
    found = rows(
        db.path,
        "SELECT t.status, e.detail FROM tickets t JOIN ticket_events e ON e.ticket_id = t.id "
        "AND e.event = 'resolved'",
    )
    assert [tuple(r) for r in found] == [("resolved", "auto_closed")]


async def test_the_closing_notice_is_in_the_language_the_customer_wrote_in(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    ticket_id = await opened_at(db, tickets, TUESDAY_10_UTC)
    await _staff_said(db, conversations, ticket_id, "staff", TUESDAY_10_UTC + timedelta(hours=1))
    languages = speaking("Wo ist mein Paket? Ich warte seit einer Woche.")
    config = support_settings(unclaimed_notice_minutes=0, auto_close_hours=48)
    channel = Channel()
    late = TUESDAY_10_UTC + timedelta(hours=50)
    await run(config, db, tickets, conversations, channel, late, languages)
    german = PERSONA.speaking("de").message("auto_closed", ticket_id=ticket_id)
    assert channel.customer == [(ticket_id, german)]
    assert german != PERSONA.message("auto_closed", ticket_id=ticket_id)
    assert "48 h" in channel.staff[0][1]  # staff read theirs as written


async def test_a_customer_who_wrote_last_is_not_closed_on(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    ticket_id = await opened_at(db, tickets, TUESDAY_10_UTC)
    await tickets.staff_replied(ticket_id, 501, "Sam")
    await _staff_said(db, conversations, ticket_id, "staff", TUESDAY_10_UTC)
    await _staff_said(db, conversations, ticket_id, "customer", TUESDAY_10_UTC + timedelta(hours=1))
    config = support_settings(unclaimed_notice_minutes=0, auto_close_hours=48)
    channel = Channel()
    late = TUESDAY_10_UTC + timedelta(days=5)
    assert await run(config, db, tickets, conversations, channel, late) == ([], [])
    assert [t.status for t in await tickets.list()] == ["active"]
    assert isinstance(tickets, TicketStore)
