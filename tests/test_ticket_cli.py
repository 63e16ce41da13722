"""``python main.py tickets list|show|export`` and ``stats``, run as an operator runs them.

The database is filled through the bot's own stores, then each command runs as a separate
process on it, so the tests see exactly the output, exit codes and formats of the contract.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from bot.store.conversations import AnswerAudit, ConversationStore, Customer
from bot.store.db import Database
from bot.store.tickets import TicketStore
from tests.helpers import run_main

# Bots started as processes find the shipped FAQ's vectors already made.
pytestmark = pytest.mark.usefixtures("warm_vector_cache")

ALICE = Customer(chat_id=1001, user_id=1001, first_name="Alice", username="alice")
BRUNO = Customer(chat_id=2002, user_id=2002, first_name="Bruno")
CHEN = Customer(chat_id=3003, user_id=3003, first_name="Chen")
TRICKY_SUMMARY = 'Refund for kettle, "cracked" lid\nsecond line; ümlaut'


def cli(db: Path, knowledge_dirs, *args: str) -> subprocess.CompletedProcess[str]:
    return run_main(knowledge_dirs, db, *args)


async def fill(path: Path) -> None:
    """Three customers: a resolved and rated ticket, an open one, and a claimed one."""
    async with Database(path) as db:
        conversations = ConversationStore(db)
        tickets = TicketStore(db)
        for customer in (ALICE, BRUNO, CHEN):
            await conversations.upsert_customer(customer)

        await conversations.add_message(ALICE.chat_id, "customer", "Where is my parcel?")
        answer = await conversations.add_message(
            ALICE.chat_id,
            "bot",
            "It left our warehouse on Monday.",
            audit=AnswerAudit(path="faq", faq_ids=("track_order", "refund_time")),
        )
        await conversations.add_feedback(answer, ALICE.chat_id, True)
        for text, ids in (
            ("Tracking is in your email.", ("track_order",)),
            ("Refunds", ("refund_time",)),
        ):
            shown = await conversations.add_message(
                BRUNO.chat_id, "bot", text, audit=AnswerAudit(path="llm", faq_ids=ids)
            )
            await conversations.add_feedback(shown, BRUNO.chat_id, text == "Refunds")
        await conversations.add_message(
            BRUNO.chat_id, "bot", "I don't know", audit=AnswerAudit(path="handoff", faq_ids=("x",))
        )
        await conversations.add_message(ALICE.chat_id, "customer", "I want to talk to a human")
        first, created = await tickets.open_or_join(
            ALICE.chat_id, ALICE.user_id, "user_request", "Where is my parcel?", "customer:1001"
        )
        assert created and first.id == 1
        await conversations.add_message(
            ALICE.chat_id, "staff", "Sam here, it is with the courier.", ticket_id=1
        )
        await tickets.staff_replied(1, 501, "Sam")
        await conversations.add_message(ALICE.chat_id, "note", "courier claim filed", ticket_id=1)
        await tickets.add_event(1, "note", actor="staff:501", detail="courier claim filed")

        second, _ = await tickets.open_or_join(
            BRUNO.chat_id, BRUNO.user_id, "model", TRICKY_SUMMARY, "customer:2002"
        )
        third, _ = await tickets.open_or_join(
            CHEN.chat_id, CHEN.user_id, "keyword", "chargeback", "customer:3003"
        )
        await tickets.claim(third.id, 502, "Kim")

        assert await tickets.resolve(1, "staff:501")
        await conversations.end_conversation(ALICE.chat_id, "ticket_closed")
        assert await tickets.rate(1, ALICE.chat_id, 5)
        # Keep the next message's timestamp after the resolution's.
        await asyncio.sleep(0.01)
        await conversations.add_message(ALICE.chat_id, "customer", "A new question after closing")
        assert (second.id, third.id) == (2, 3)


@pytest.fixture
async def filled(tmp_path) -> Path:
    path = tmp_path / "bot.sqlite3"
    await fill(path)
    return path


def test_list_json_has_the_contract_fields(filled, knowledge_dirs):
    done = cli(filled, knowledge_dirs, "tickets", "list", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert isinstance(listed, list) and len(listed) == 3
    for item in listed:
        assert {"id", "chat_id", "user_id", "status", "reason", "created_at", "resolved_at"} <= set(
            item
        )
    brief = [(t["id"], t["chat_id"], t["user_id"], t["status"], t["reason"]) for t in listed]
    assert brief == [
        (1, 1001, 1001, "resolved", "user_request"),
        (2, 2002, 2002, "open", "model"),
        (3, 3003, 3003, "active", "keyword"),
    ]
    assert listed[0]["resolved_at"] and listed[0]["created_at"] <= listed[0]["resolved_at"]
    assert listed[1]["resolved_at"] is None and listed[2]["resolved_at"] is None
    assert listed[0]["rating"] == 5


@pytest.mark.parametrize(
    ("status", "ids"),
    [("open", [2]), ("active", [3]), ("resolved", [1]), ("unresolved", [2, 3])],
)
def test_list_filters_by_status(filled, knowledge_dirs, status, ids):
    done = cli(filled, knowledge_dirs, "tickets", "list", "--status", status, "--json")
    assert done.returncode == 0, done.stderr
    assert [t["id"] for t in json.loads(done.stdout)] == ids


def test_list_rejects_an_unknown_status(filled, knowledge_dirs):
    done = cli(filled, knowledge_dirs, "tickets", "list", "--status", "pending")
    assert done.returncode == 2
    assert "pending" in done.stderr


def test_list_as_text(filled, knowledge_dirs):
    done = cli(filled, knowledge_dirs, "tickets", "list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("#1") and "resolved" in lines[0] and "user_request" in lines[0]
    assert "Kim" in lines[2]


def test_empty_database(tmp_path, knowledge_dirs):
    db = tmp_path / "empty.sqlite3"
    done = cli(db, knowledge_dirs, "tickets", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    assert cli(db, knowledge_dirs, "tickets", "list").stdout.strip() == "no tickets"
    exported = cli(db, knowledge_dirs, "tickets", "export", "--format", "jsonl")
    assert exported.returncode == 0 and exported.stdout == ""


def test_show_prints_events_and_the_transcript(filled, knowledge_dirs):
    done = cli(filled, knowledge_dirs, "tickets", "show", "1")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Ticket #1 · resolved · user_request" in out
    assert "Alice (chat 1001)" in out
    assert "rating 5" in out
    for event in ("escalated", "active", "note", "resolved", "rated"):
        assert event in out
    transcript = out.split("Transcript:")[1]
    order = [
        "Where is my parcel?",
        "It left our warehouse on Monday.",
        "I want to talk to a human",
        "Sam here, it is with the courier.",
        "courier claim filed",
    ]
    positions = [transcript.index(text) for text in order]
    assert positions == sorted(positions)
    assert "A new question after closing" not in transcript


def test_show_an_unknown_ticket_fails(filled, knowledge_dirs):
    done = cli(filled, knowledge_dirs, "tickets", "show", "99")
    assert done.returncode == 1
    assert "99" in done.stderr and done.stdout == ""


def test_export_csv_round_trips(filled, knowledge_dirs):
    done = cli(filled, knowledge_dirs, "tickets", "export", "--format", "csv")
    assert done.returncode == 0, done.stderr
    exported = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["id"] for r in exported] == ["1", "2", "3"]
    assert [r["status"] for r in exported] == ["resolved", "open", "active"]
    assert exported[1]["summary"] == TRICKY_SUMMARY
    assert {"chat_id", "user_id", "reason", "created_at", "resolved_at", "rating"} <= set(
        exported[0]
    )


def test_export_jsonl(filled, knowledge_dirs):
    done = cli(filled, knowledge_dirs, "tickets", "export", "--format", "jsonl")
    assert done.returncode == 0, done.stderr
    exported = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(t["id"], t["reason"]) for t in exported] == [
        (1, "user_request"),
        (2, "model"),
        (3, "keyword"),
    ]
    assert exported[1]["summary"] == TRICKY_SUMMARY


def test_stats(filled, knowledge_dirs):
    done = cli(filled, knowledge_dirs, "stats")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Handed to staff: 3" in out
    assert "Tickets by reason: keyword 1, model 1, user_request 1" in out
    assert "Answer feedback: 👍 2 · 👎 1" in out
    assert "Most-used FAQ entries: track_order 2, refund_time 1" in out
    assert "Average rating: 5.00 (1)" in out
    assert "Median resolution time: " in out and "Median resolution time: -" not in out


def test_close_reopen_and_note_from_the_command_line(filled, knowledge_dirs):
    closed = cli(filled, knowledge_dirs, "tickets", "close", "2")
    assert closed.returncode == 0, closed.stderr
    assert "Ticket #2 closed" in closed.stdout and "not messaged" in closed.stdout
    again = cli(filled, knowledge_dirs, "tickets", "close", "2")
    assert again.returncode == 1 and "already resolved" in again.stderr

    noted = cli(filled, knowledge_dirs, "tickets", "note", "2", "called", "the", "customer")
    assert noted.returncode == 0, noted.stderr
    reopened = cli(filled, knowledge_dirs, "tickets", "reopen", "2")
    assert reopened.returncode == 0 and "Ticket #2 reopened" in reopened.stdout

    listed = {
        t["id"]: t
        for t in json.loads(cli(filled, knowledge_dirs, "tickets", "list", "--json").stdout)
    }
    assert listed[2]["status"] == "active" and listed[2]["resolved_at"] is None
    shown = cli(filled, knowledge_dirs, "tickets", "show", "2").stdout
    assert "called the customer" in shown
    for event in ("resolved", "note", "reopened"):
        assert event in shown
    assert "cli:0" in shown


@pytest.mark.parametrize("action", [["close"], ["reopen"], ["note", "hello"]])
def test_actions_on_an_unknown_ticket_fail_clearly(filled, knowledge_dirs, action):
    done = cli(filled, knowledge_dirs, "tickets", action[0], "99", *action[1:])
    assert done.returncode == 1
    assert "no ticket #99" in done.stderr and done.stdout == ""


def test_reopen_refused_while_another_is_open(filled, knowledge_dirs):
    """Alice's ticket 1 is resolved; once she has a new one open, it cannot come back."""
    asyncio.run(_open_new_for_alice(filled))
    done = cli(filled, knowledge_dirs, "tickets", "reopen", "1")
    assert done.returncode == 1 and "cannot be reopened" in done.stderr


async def _open_new_for_alice(path: Path) -> None:
    async with Database(path) as db:
        await TicketStore(db).open_or_join(
            ALICE.chat_id, ALICE.user_id, "user_request", "again", "customer:1001"
        )
