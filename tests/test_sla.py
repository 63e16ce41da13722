"""Reminders for tickets that wait too long, and the office hours they respect.

The sweep runs on a real SQLite file with a clock the test sets; the last test runs the
bot itself, whose JobQueue posts the reminder into the ticket's topic through the Bot API
double.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.knowledge.loader import load_persona
from bot.office_hours import is_open, next_open
from bot.settings import OfficeHoursSettings, Settings, SupportSettings
from bot.sla import sweep
from tests.fakes import TgUser
from tests.helpers import (
    REPO,
    SATURDAY_10_UTC,
    TUESDAY_10_UTC,
    opened_at,
    rows,
    support_settings,
    values,
)

PERSONA = load_persona(REPO / "config" / "persona.yaml")


class Desk:
    def __init__(self) -> None:
        self.posted: list[tuple[int, str]] = []

    async def post(self, ticket, text: str) -> None:
        self.posted.append((ticket.id, text))


async def test_one_reminder_past_the_limit_then_at_most_every_repeat(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    ticket_id = await opened_at(db, tickets, TUESDAY_10_UTC)
    config = support_settings(sla_minutes=30, sla_repeat_minutes=60)
    desk = Desk()

    async def at(minutes: int) -> list:
        now = TUESDAY_10_UTC + timedelta(minutes=minutes)
        return await sweep(config, tickets, conversations, PERSONA, desk.post, now)

    assert await at(29) == []
    assert len(await at(31)) == 1
    assert desk.posted == [
        (ticket_id, "⏰ Ticket #1 (Anna, Asked for a person) has waited 31 min for a first reply.")
    ]
    assert await at(45) == [] and await at(90) == []
    assert len(await at(92)) == 1, "still waiting an hour after the first reminder"
    events = rows(
        Path(db.path), "SELECT created_at FROM ticket_events WHERE event = 'sla_reminder'"
    )
    assert len(events) == 2 and events[0]["created_at"].startswith("2026-12-01T10:31")


async def test_a_reply_or_a_resolution_stops_reminders(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    ticket_id = await opened_at(db, tickets, TUESDAY_10_UTC)
    await tickets.claim(ticket_id, 5, "Sam")
    desk = Desk()
    later = TUESDAY_10_UTC + timedelta(minutes=40)
    assert (
        len(await sweep(support_settings(), tickets, conversations, PERSONA, desk.post, later)) == 1
    ), "a claim is not an answer: the customer still waits"
    await tickets.staff_replied(ticket_id, 5, "Sam")
    much_later = later + timedelta(hours=3)
    assert (
        await sweep(support_settings(), tickets, conversations, PERSONA, desk.post, much_later)
        == []
    )


async def test_nothing_outside_office_hours_unless_configured(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    await opened_at(db, tickets, SATURDAY_10_UTC)
    desk = Desk()
    saturday_noon = SATURDAY_10_UTC + timedelta(hours=2)
    assert (
        await sweep(support_settings(), tickets, conversations, PERSONA, desk.post, saturday_noon)
        == []
    )
    anyway = support_settings(remind_outside_office_hours=True)
    assert len(await sweep(anyway, tickets, conversations, PERSONA, desk.post, saturday_noon)) == 1


async def test_the_first_reminder_comes_when_the_office_opens(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    await opened_at(db, tickets, SATURDAY_10_UTC)
    desk = Desk()
    monday_0805_utc = datetime(2026, 12, 7, 8, 5, tzinfo=UTC)  # 09:05 in Berlin
    found = await sweep(
        support_settings(), tickets, conversations, PERSONA, desk.post, monday_0805_utc
    )
    assert len(found) == 1 and "has waited 46 h 5 min" in desk.posted[0][1]


async def test_reminders_off_with_zero_minutes(sweep_stores) -> None:
    db, tickets, conversations = sweep_stores
    await opened_at(db, tickets, TUESDAY_10_UTC)
    late = TUESDAY_10_UTC + timedelta(hours=5)
    assert (
        await sweep(
            support_settings(sla_minutes=0), tickets, conversations, PERSONA, Desk().post, late
        )
        == []
    )


def test_office_hours_in_their_time_zone() -> None:
    config = Settings()  # Monday to Friday, 09:00-18:00 Europe/Berlin
    assert is_open(config, TUESDAY_10_UTC)
    assert not is_open(config, datetime(2026, 12, 1, 7, 59, tzinfo=UTC))  # 08:59 in Berlin
    assert is_open(config, datetime(2026, 12, 1, 8, 0, tzinfo=UTC))
    assert not is_open(config, datetime(2026, 12, 1, 17, 0, tzinfo=UTC))  # 18:00 in Berlin
    assert not is_open(config, SATURDAY_10_UTC)
    assert next_open(config, TUESDAY_10_UTC) == TUESDAY_10_UTC
    assert next_open(config, SATURDAY_10_UTC) == datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 3, 17, 30, tzinfo=UTC)  # Friday 19:30 in Berlin (CEST)
    assert next_open(config, summer) == datetime(2026, 7, 6, 7, 0, tzinfo=UTC)


def test_office_hours_until_midnight_every_day() -> None:
    hours = OfficeHoursSettings(
        timezone="UTC", days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"), end="24:00"
    )
    config = Settings(support=SupportSettings(office_hours=hours))
    assert is_open(config, datetime(2026, 12, 5, 23, 59, tzinfo=UTC))
    assert not is_open(config, datetime(2026, 12, 6, 8, 59, tzinfo=UTC))


STAFF = -1009300
CUSTOMER = TgUser(id=4001, first_name="Anna")
OTHER = TgUser(id=4002, first_name="Ben")


async def test_the_running_bot_posts_a_reminder_in_the_topic(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    bot_yaml = config / "bot.yaml"
    text = bot_yaml.read_text(encoding="utf-8")
    text = text.replace("sla_check_seconds: 60.0", "sla_check_seconds: 0.2")
    text = text.replace("remind_outside_office_hours: false", "remind_outside_office_hours: true")
    bot_yaml.write_text(text, encoding="utf-8")
    fake_telegram.add_forum_group(STAFF)
    settings_ = make_settings(fake_telegram, None, STAFF_CHAT_ID=str(STAFF))
    await start_bot(settings_)
    db = Path(settings_.storage.database_path)

    async def backdated_ticket(user: TgUser) -> int:
        fake_telegram.user_text(user.id, "I want to talk to a human", user)
        # Once its topic is open: a ticket hours old always has one by then.
        found = await fake_telegram.wait_for(
            lambda: values(
                db,
                "SELECT id FROM tickets WHERE chat_id = ? AND staff_thread_id IS NOT NULL",
                user.id,
            )
        )
        two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        # In a thread: the bot shares this event loop, and a write of its own in flight
        # would wait on it while this one waited on the bot's lock.
        await asyncio.to_thread(
            write_db,
            db,
            "UPDATE tickets SET created_at = ? WHERE id = ?",
            two_hours_ago,
            found[0][0],
        )
        return found[0][0]

    def reminders(ticket_id: int) -> list:
        return [
            m
            for m in fake_telegram.bot_messages(STAFF)
            if m.get("text", "").startswith(f"⏰ Ticket #{ticket_id} ")
        ]

    first = await backdated_ticket(CUSTOMER)
    [reminder] = await fake_telegram.wait_for(lambda: reminders(first))
    thread_id = values(db, "SELECT staff_thread_id FROM tickets WHERE id = ?", first)[0][0]
    assert reminder["message_thread_id"] == thread_id
    assert "Anna, Asked for a person" in reminder["text"] and "waited 2 h" in reminder["text"]

    # A later sweep reminds of a newer ticket, and not again of the first one.
    second = await backdated_ticket(OTHER)
    await fake_telegram.wait_for(lambda: reminders(second))
    await fake_telegram.wait_for(
        lambda: (
            values(db, "SELECT COUNT(*) FROM ticket_events WHERE event = 'sla_reminder'") == [(2,)]
        )
    )
    assert len(reminders(first)) == 1


def write_db(path: Path, sql: str, *params) -> None:
    """Change the bot's database from outside, as an operator's script would."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(sql, params)
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        (
            "timezone: Mars/Olympus",
            "support.office_hours.timezone: unknown time zone 'Mars/Olympus'",
        ),
        ("days: [mon, thursday]", "support.office_hours.days: 'thursday' is not a day"),
        ('start: "18:00"\n    end: "09:00"', "support.office_hours.end: 09:00 must be later"),
        ('start: "9am"', "support.office_hours.start: '9am' is not a time of day"),
    ],
)
def test_office_hours_mistakes_are_reported_at_their_line(tmp_path: Path, hours, message) -> None:
    from bot.errors import ConfigError
    from bot.settings_loader import load_settings

    (tmp_path / "bot.yaml").write_text(
        f"support:\n  sla_minutes: 30\n  office_hours:\n    {hours}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(tmp_path, {})
    [problem] = [str(p) for p in raised.value.problems]
    assert problem.startswith(f"{tmp_path / 'bot.yaml'}:4: {message}"), problem
