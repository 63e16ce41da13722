"""The ticket store's rules that every door relies on: one escalation per real change,
claims that never take a colleague's ticket silently, summaries cut between words, and
the migration that stops counting claims as responses."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest

from bot.store.conversations import ConversationStore, Customer
from bot.store.db import Database
from bot.store.migrations import MIGRATIONS
from bot.store.tickets import TicketStore, summary_of
from tests.helpers import rows, values

ANNA = Customer(chat_id=21, user_id=21, first_name="Anna")


@pytest.fixture
async def store(tmp_path: Path):
    async with Database(tmp_path / "bot.sqlite3") as db:
        await ConversationStore(db).upsert_customer(ANNA)
        yield db, TicketStore(db)


async def test_re_asks_join_quietly_and_a_stronger_reason_wins_once(store) -> None:
    """Without a staff group every message escalates again; the log stays readable."""
    db, tickets = store
    for n in range(10):
        ticket, created = await tickets.open_or_join(
            21, 21, "low_confidence", f"question {n}", "customer:21"
        )
        assert created == (n == 0)
    ticket, created = await tickets.open_or_join(21, 21, "user_request", "a human", "customer:21")
    assert not created and ticket.reason == "user_request" and ticket.summary == "a human"
    ticket, _ = await tickets.open_or_join(21, 21, "low_confidence", "again", "customer:21")
    assert ticket.reason == "user_request", "a weaker reason never replaces a stronger one"
    assert ticket.summary == "again"
    events = [(e["event"], e["reason"]) for e in await tickets.events(ticket.id)]
    assert events == [("escalated", "low_confidence"), ("escalated", "user_request")]


async def test_claims(store) -> None:
    db, tickets = store
    ticket, _ = await tickets.open_or_join(21, 21, "user_request", None, "customer:21")
    assert (await tickets.claim(ticket.id, 5, "Sam")).assignee_id is None
    held = await tickets.claim(ticket.id, 6, "Kim")
    assert held.assignee_name == "Sam"
    assert (await tickets.get(ticket.id)).assignee_id == 5
    await tickets.claim(ticket.id, 6, "Kim", force=True)
    after = await tickets.get(ticket.id)
    assert (after.assignee_id, after.first_response_at) == (6, None)
    await tickets.resolve(ticket.id, "staff:6")
    assert await tickets.claim(ticket.id, 5, "Sam", force=True) is None


def test_summaries_are_cut_between_words() -> None:
    texts = [f"message number {n} about the broken kettle" for n in range(40)]
    summary = summary_of(texts, limit=120)
    assert len(summary) <= 120 and summary.startswith("… ")
    assert summary.endswith("message number 39 about the broken kettle")
    kept = summary[2:]
    joined = " / ".join(texts)
    assert joined.endswith(kept) and joined[-len(kept) - 1] == " ", "cut between two words"
    assert summary_of(["Hi", "where is my order?"]) == "Hi / where is my order?"


async def test_migration_recomputes_first_response_of_claimed_tickets(tmp_path: Path) -> None:
    """A database written before m007: claims had set first_response_at."""
    path = tmp_path / "old.sqlite3"
    async with aiosqlite.connect(path) as conn:
        await conn.execute(
            "CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        for name, fn in MIGRATIONS:
            if name.startswith("m007"):
                break
            await fn(conn)
            await conn.execute("INSERT INTO migrations VALUES (?, 'then')", (name,))
        await conn.executescript(
            """
            INSERT INTO customers (chat_id, created_at, updated_at) VALUES (1, 't', 't'), (2, 't', 't');
            INSERT INTO conversations (id, chat_id, started_at) VALUES (1, 1, 't'), (2, 2, 't');
            INSERT INTO tickets (id, chat_id, status, reason, created_at, first_response_at, updated_at)
              VALUES (1, 1, 'active', 'user_request', '2026-01-01T10:00', '2026-01-01T10:01', 't'),
                     (2, 2, 'active', 'user_request', '2026-01-01T10:00', '2026-01-01T10:02', 't');
            INSERT INTO ticket_events (ticket_id, event, created_at)
              VALUES (1, 'claimed', '2026-01-01T10:01'), (2, 'claimed', '2026-01-01T10:02');
            INSERT INTO messages (conversation_id, chat_id, role, text, ticket_id, created_at)
              VALUES (1, 1, 'customer', 'help', NULL, '2026-01-01T09:59'),
                     (1, 1, 'staff', 'hello', 1, '2026-01-01T10:30'),
                     (2, 2, 'customer', 'help', NULL, '2026-01-01T09:59');
            """
        )
        await conn.commit()
    async with Database(path):
        pass
    found = [tuple(r) for r in rows(path, "SELECT id, first_response_at FROM tickets ORDER BY id")]
    assert found == [(1, "2026-01-01T10:30"), (2, None)]
    assert values(path, "SELECT COUNT(*) FROM migrations") == [(len(MIGRATIONS),)]
