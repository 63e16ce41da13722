"""The ordered per-chat update processor over a real inbox in SQLite.

Handlers here are plain coroutines, as python-telegram-bot hands them over:
what is proven is the processor's own promise (order within a chat, chats in
parallel, an update handled once, a replay sending only what is missing).
"""

from __future__ import annotations

import asyncio

import pytest
from telegram import Bot, Update

from bot.store.db import Database
from bot.store.inbox import Inbox
from bot.telegram.processor import OrderedChatProcessor

BOT = Bot("123:abc")


def update(update_id: int, chat_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 1700000000,
                "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "Ann"},
                "text": f"message {update_id}",
            },
        },
        BOT,
    )


@pytest.fixture
async def db(tmp_path):
    async with Database(tmp_path / "inbox.sqlite3") as opened:
        yield opened


async def statuses(db: Database) -> dict[int, str]:
    rows = await db.fetchall("SELECT update_id, status FROM inbox")
    return {int(r["update_id"]): r["status"] for r in rows}


async def test_a_chat_waits_for_its_earlier_update_while_other_chats_go_on(db):
    processor = OrderedChatProcessor(Inbox(db))
    order: list[str] = []
    started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        order.append("first of chat 1, started")
        started.set()
        await release.wait()
        order.append("first of chat 1, done")

    async def note(what: str) -> None:
        order.append(what)

    first = asyncio.create_task(processor.do_process_update(update(1, 1), slow()))
    await started.wait()
    second = asyncio.create_task(
        processor.do_process_update(update(2, 1), note("second of chat 1"))
    )
    # Another chat is handled from start to its "done" mark while chat 1 is held.
    await processor.do_process_update(update(3, 2), note("chat 2"))
    assert order == ["first of chat 1, started", "chat 2"]
    assert (await statuses(db))[3] == "done"
    release.set()
    await asyncio.gather(first, second)
    assert order == [
        "first of chat 1, started",
        "chat 2",
        "first of chat 1, done",
        "second of chat 1",
    ]
    assert await statuses(db) == {1: "done", 2: "done", 3: "done"}


async def test_an_update_handled_before_is_not_handled_again(db):
    processor = OrderedChatProcessor(Inbox(db))
    runs: list[int] = []

    async def handle(n: int) -> None:
        runs.append(n)

    await processor.do_process_update(update(5, 1), handle(1))
    await processor.do_process_update(update(5, 1), handle(2))  # Telegram sent it again
    restarted = OrderedChatProcessor(Inbox(db))
    await restarted.do_process_update(update(5, 1), handle(3))
    assert runs == [1]
    assert await statuses(db) == {5: "done"}


async def test_a_replay_after_a_crash_sends_only_what_was_not_delivered(db):
    processor = OrderedChatProcessor(Inbox(db))
    seen = []

    async def first_run() -> None:
        journal = processor.journal_for(update(8, 1))
        seen.append(journal)
        first, second = journal.key(1, "part one"), journal.key(1, "part two")
        assert await journal.before_send(first) is None
        await journal.after_send(first, 900)  # delivered; then the process dies
        assert await journal.before_send(second) is None
        processor.failed_updates.add(8)  # left pending, as a crash leaves it

    await processor.do_process_update(update(8, 1), first_run())
    assert processor.journal_for(update(8, 1)) is None  # only while it is handled
    assert await statuses(db) == {8: "pending"}
    assert await Inbox(db).pending() != []

    restarted = OrderedChatProcessor(Inbox(db))

    async def replay() -> None:
        journal = restarted.journal_for(update(8, 1))
        assert journal is not seen[0] and journal.replay
        assert await journal.before_send(journal.key(1, "part one")) == 900
        assert await journal.before_send(journal.key(1, "part two")) is None
        assert journal.uncertain == 1  # part two may or may not have arrived

    await restarted.do_process_update(update(8, 1), replay())
    assert await statuses(db) == {8: "done"}
    left = await db.fetchall("SELECT * FROM sent_replies WHERE update_id = 8")
    assert left == []  # the journal goes with the "done" mark


async def test_without_an_inbox_updates_are_still_handled_in_order():
    processor = OrderedChatProcessor(None)
    order: list[int] = []

    async def handle(n: int) -> None:
        assert processor.journal_for(update(n, 1)) is None
        await asyncio.sleep(0.01 * (5 - n))  # the earlier, the slower: order must hold
        order.append(n)

    await asyncio.gather(*(processor.do_process_update(update(n, 1), handle(n)) for n in range(5)))
    assert order == [0, 1, 2, 3, 4]
