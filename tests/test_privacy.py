"""Privacy: /forget through Telegram, the retention purge, and a backup taken while the bot writes.

The database is read directly, as an operator (or an auditor) would, to see what is
really gone; the bot keeps serving other customers throughout.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.privacy import purge_older_than
from bot.store.conversations import Customer
from bot.store.db import Database
from tests.fakes import TgUser
from tests.helpers import button_data, run_main, values

# Bots started as processes find the shipped FAQ's vectors already made.
pytestmark = pytest.mark.usefixtures("warm_vector_cache")

REPO = Path(__file__).resolve().parent.parent
STAFF = -1009000
ALICE = TgUser(id=1001, first_name="Alice", username="alice")
BOB = TgUser(id=2002, first_name="Bob")
AGENT = TgUser(id=501, first_name="Sam")


def count(path: Path, sql: str, *params) -> int:
    return values(path, sql, *params)[0][0]


async def ask_to_forget(fake, user: TgUser, answer: str) -> None:
    """Send /forget, check the confirmation, press ``answer`` and wait for the bot's word."""
    before = len(fake.bot_messages(user.id))
    fake.user_text(user.id, "/forget", user)
    await fake.wait_for_messages(user.id, before + 1)
    confirm = fake.bot_messages(user.id)[-1]
    assert "delete your messages" in confirm["text"]
    assert button_data(confirm) == ["forget:yes", "forget:no"]
    fake.callback_query(user.id, user, f"forget:{answer}", confirm["message_id"])
    await fake.wait_for_messages(user.id, before + 2)


async def test_forget_deletes_the_customers_messages_and_others_keep_going(
    fake_telegram, fake_llm, make_settings, start_bot, tmp_path
):
    db = tmp_path / "bot.sqlite3"
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(ALICE.id, "My address is 12 Elm Street, where is my order?", ALICE)
    fake_telegram.user_text(BOB.id, "How long does a refund take?", BOB)
    await fake_telegram.wait_for_messages(ALICE.id, 1)
    await fake_telegram.wait_for_messages(BOB.id, 1)
    answer = fake_telegram.bot_messages(ALICE.id)[-1]
    fake_telegram.callback_query(ALICE.id, ALICE, button_data(answer)[0], answer["message_id"])
    await fake_telegram.wait_for(
        lambda: count(db, "SELECT COUNT(*) FROM feedback WHERE chat_id = ?", ALICE.id)
    )
    assert count(db, "SELECT COUNT(*) FROM messages WHERE chat_id = ?", ALICE.id) >= 2

    await ask_to_forget(fake_telegram, ALICE, "yes")
    assert fake_telegram.sent_messages(ALICE.id)[-1] == (
        "Your messages in this chat have been deleted from our records."
    )
    await fake_telegram.wait_for(
        lambda: count(db, "SELECT COUNT(*) FROM inbox WHERE chat_key = ?", str(ALICE.id)) == 0
    )
    assert count(db, "SELECT COUNT(*) FROM messages WHERE chat_id = ?", ALICE.id) == 0
    assert count(db, "SELECT COUNT(*) FROM feedback WHERE chat_id = ?", ALICE.id) == 0
    assert count(db, "SELECT COUNT(*) FROM messages WHERE text LIKE '%Elm Street%'") == 0
    assert count(db, "SELECT COUNT(*) FROM answers WHERE request_json LIKE '%Elm Street%'") == 0
    assert count(db, "SELECT COUNT(*) FROM inbox WHERE payload LIKE '%Elm Street%'") == 0
    assert values(db, "SELECT first_name, username FROM customers WHERE chat_id = ?", ALICE.id) == [
        (None, None)
    ]
    # Bob's conversation is untouched, and the bot keeps answering both.
    assert count(db, "SELECT COUNT(*) FROM messages WHERE chat_id = ?", BOB.id) == 2
    fake_telegram.user_text(BOB.id, "Do you ship abroad?", BOB)
    assert (await fake_telegram.wait_for_messages(BOB.id, 2))[
        -1
    ] == "Answer to: Do you ship abroad?"
    fake_telegram.user_text(ALICE.id, "Do you ship to Italy?", ALICE)
    texts = await fake_telegram.wait_for_messages(ALICE.id, 4)
    assert texts[-1] == "Answer to: Do you ship to Italy?"
    # Writing again, she is known by her name again (staff see who writes).
    assert values(db, "SELECT first_name FROM customers WHERE chat_id = ?", ALICE.id) == [
        ("Alice",)
    ]
    # The model no longer sees what was forgotten.
    assert "Elm Street" not in str(fake_llm.last_request["messages"])


async def test_forget_cancelled_keeps_everything(
    fake_telegram, fake_llm, make_settings, start_bot, tmp_path
):
    db = tmp_path / "bot.sqlite3"
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(ALICE.id, "Where is my order?", ALICE)
    await fake_telegram.wait_for_messages(ALICE.id, 1)
    await ask_to_forget(fake_telegram, ALICE, "no")
    assert fake_telegram.sent_messages(ALICE.id)[-1] == "All right, nothing was deleted."
    assert count(db, "SELECT COUNT(*) FROM messages WHERE chat_id = ?", ALICE.id) == 2


async def test_forget_closes_the_open_ticket_first_and_tells_staff(
    fake_telegram, fake_llm, make_settings, start_bot, tmp_path
):
    db = tmp_path / "bot.sqlite3"
    fake_telegram.add_forum_group(STAFF)
    await start_bot(make_settings(fake_telegram, fake_llm, STAFF_CHAT_ID=str(STAFF)))
    fake_telegram.user_text(ALICE.id, "My card ending 4242 was charged twice", ALICE)
    await fake_telegram.wait_for_messages(ALICE.id, 1)
    fake_telegram.user_text(ALICE.id, "I want to talk to a person", ALICE)
    await fake_telegram.wait_for_messages(ALICE.id, 2)  # told a person will take over
    await fake_telegram.wait_for(lambda: fake_telegram.bot_messages(STAFF))
    (thread_id,) = fake_telegram.topics(STAFF)
    assert values(db, "SELECT summary FROM tickets")[0][0]

    await ask_to_forget(fake_telegram, ALICE, "yes")
    staff_texts = [m["text"] for m in fake_telegram.bot_messages(STAFF)]
    assert any("/forget" in t for t in staff_texts)
    assert fake_telegram.topics(STAFF)[thread_id].closed
    # The ticket stays for statistics, without what the customer wrote.
    ((status, reason, summary),) = values(db, "SELECT status, reason, summary FROM tickets")
    assert (status, reason, summary) == ("resolved", "user_request", None)
    assert count(db, "SELECT COUNT(*) FROM ticket_events WHERE detail LIKE '%4242%'") == 0
    assert count(db, "SELECT COUNT(*) FROM messages WHERE text LIKE '%4242%'") == 0
    # With the ticket closed, the bot answers Alice itself again.
    fake_telegram.user_text(ALICE.id, "Thanks, one more question?", ALICE)
    await fake_telegram.wait_for(
        lambda: fake_telegram.sent_messages(ALICE.id)[-1] == "Answer to: Thanks, one more question?"
    )


async def test_retention_purges_old_text_but_keeps_tickets(tmp_path):
    now = datetime.now(UTC)
    old = (now - timedelta(days=40)).isoformat(timespec="milliseconds")
    recent = (now - timedelta(days=5)).isoformat(timespec="milliseconds")
    async with Database(tmp_path / "bot.sqlite3") as db:
        await _seed(db, old, recent)
        assert await purge_older_than(db, 30) == 1
        assert await purge_older_than(db, 0) == 0  # 0 keeps everything
    path = tmp_path / "bot.sqlite3"
    assert values(path, "SELECT text FROM messages ORDER BY id") == [(None,), ("recent words",)]
    assert values(path, "SELECT request_json FROM answers") == [(None,)]
    assert values(path, "SELECT file_id FROM attachments") == [("recent-file",)]
    assert values(path, "SELECT status, reason, summary FROM tickets") == [
        ("resolved", "user_request", None)
    ]


async def test_retention_runs_when_the_bot_starts(
    fake_telegram, fake_llm, make_settings, start_bot, tmp_path, knowledge_dirs
):
    config, _ = knowledge_dirs
    yaml = (config / "bot.yaml").read_text().replace("retention_days: 0", "retention_days: 30")
    (config / "bot.yaml").write_text(yaml)
    now = datetime.now(UTC)
    old = (now - timedelta(days=40)).isoformat(timespec="milliseconds")
    recent = (now - timedelta(days=5)).isoformat(timespec="milliseconds")
    async with Database(tmp_path / "bot.sqlite3") as db:
        await _seed(db, old, recent)
    settings = make_settings(fake_telegram, fake_llm)
    assert settings.storage.retention_days == 30
    await start_bot(settings)
    path = tmp_path / "bot.sqlite3"
    await fake_telegram.wait_for(
        lambda: values(path, "SELECT text FROM messages ORDER BY id LIMIT 1") == [(None,)]
    )
    assert values(path, "SELECT text FROM messages ORDER BY id") == [(None,), ("recent words",)]


async def _seed(db: Database, old: str, recent: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO customers (chat_id, created_at, updated_at) VALUES (7, ?, ?)", (old, old)
        )
        await conn.execute(
            "INSERT INTO conversations (id, chat_id, started_at) VALUES (1, 7, ?)", (old,)
        )
        await conn.execute(
            "INSERT INTO messages (conversation_id, chat_id, role, text, created_at) "
            "VALUES (1, 7, 'customer', 'old words', ?), (1, 7, 'customer', 'recent words', ?)",
            (old, recent),
        )
        await conn.execute(
            "INSERT INTO answers (message_id, path, request_json) VALUES (1, 'llm', '[\"old\"]')"
        )
        await conn.execute(
            "INSERT INTO attachments (message_id, chat_id, kind, file_id, transcript, created_at) "
            "VALUES (1, 7, 'voice', 'old-file', 'old words', ?), "
            "(2, 7, 'photo', 'recent-file', NULL, ?)",
            (old, recent),
        )
        await conn.execute(
            "INSERT INTO tickets (chat_id, status, reason, summary, created_at, resolved_at, "
            "updated_at) VALUES (7, 'resolved', 'user_request', 'old words', ?, ?, ?)",
            (old, old, old),
        )


async def test_backup_while_the_bot_writes(
    fake_telegram, fake_llm, make_settings, start_bot, tmp_path, knowledge_dirs
):
    config, faq = knowledge_dirs
    bot = await start_bot(make_settings(fake_telegram, fake_llm))
    db = bot.services.db
    stop = asyncio.Event()
    written = 0

    async def keep_writing() -> None:
        nonlocal written
        while not stop.is_set():
            await bot.services.conversations.add_message(3003, "customer", f"message {written}")
            written += 1
            await asyncio.sleep(0)

    await bot.services.conversations.upsert_customer(Customer(chat_id=3003))
    writer = asyncio.create_task(keep_writing())
    target = tmp_path / "backups" / "copy.sqlite3"
    env = {
        **os.environ,
        "CONFIG_DIR": str(config),
        "FAQ_DIR": str(faq),
        "DATABASE_PATH": db.path,
    }
    env.pop("TELEGRAM_BOT_TOKEN", None)
    try:
        await fake_telegram.wait_for(lambda: written > 50)
        before = written
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "main.py",
            "backup",
            str(target),
            cwd=REPO,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        during = written
    finally:
        stop.set()
        await writer
    assert process.returncode == 0, err.decode()
    assert "integrity ok" in out.decode()
    assert during > before  # the bot kept writing while the copy was taken
    assert values(target, "PRAGMA integrity_check") == [("ok",)]
    copied = count(target, "SELECT COUNT(*) FROM messages WHERE chat_id = 3003")
    assert before <= copied <= written
    assert values(target, "PRAGMA journal_mode") == [("delete",)]
    assert not list(target.parent.glob("*.partial"))


@pytest.mark.parametrize("folder", ["existing", "new/"])
def test_backup_into_a_folder_writes_a_timestamped_file(tmp_path, knowledge_dirs, folder):
    database = tmp_path / "bot.sqlite3"
    sqlite3.connect(database).close()
    (tmp_path / "existing").mkdir()
    target = f"{tmp_path}/{folder}"  # pathlib would drop the trailing slash
    done = run_main(knowledge_dirs, database, "backup", target)
    assert done.returncode == 0, done.stderr
    [written] = list((tmp_path / folder.rstrip("/")).iterdir())
    assert re.fullmatch(r"bot-\d{8}-\d{6}\.sqlite3", written.name), written.name
    assert str(written) in done.stdout
    assert values(written, "PRAGMA integrity_check") == [("ok",)]
