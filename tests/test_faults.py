"""Faults injected into the model API and the Bot API: the customer always gets an answer.

The bot runs in-process against the doubles over HTTP; retry budgets, timeouts and
the circuit breaker are shrunk in the copied bot.yaml so failures play out quickly.
"""

from __future__ import annotations

import sqlite3

from tests.fakes import Reply
from tests.helpers import all_handled, migrated_without, no_errors_logged, tune, values

FAILED_PREFIX = "Sorry, I ran into a technical problem"


# ---------------------------------------------------------------- model API faults


async def test_rate_limited_three_times_then_answered(
    fake_telegram, fake_llm, make_settings, start_bot, caplog
):
    fake_llm.script(
        Reply.rate_limited(retry_after=0.2),
        Reply.rate_limited(retry_after=None, retry_after_ms=150),
        Reply.rate_limited(retry_after=0.1),
    )
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.user_text(1101, "Can I change my delivery address?")
    texts = await fake_telegram.wait_for_messages(1101, 1, timeout=10)
    await all_handled(fake_telegram, settings.storage.database_path)
    assert texts == ["Answer to: Can I change my delivery address?"]
    assert len(fake_llm.requests) == 4
    no_errors_logged(caplog)


async def test_malformed_and_empty_completions_count_as_failures(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    tune(knowledge_dirs[0], streaming="false")
    fake_llm.script(Reply.malformed_json(), Reply.no_choices(), Reply.text("   "))
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.user_text(1102, "Do you ship to Norway?")
    texts = await fake_telegram.wait_for_messages(1102, 1, timeout=15)
    assert texts == ["Answer to: Do you ship to Norway?"]
    assert len(fake_llm.requests) == 4, "each broken answer was retried"


async def test_model_down_faq_or_apology_with_ticket_and_breaker_stops_waiting(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    tune(
        knowledge_dirs[0],
        retry_budget_seconds="1.0",
        circuit_failures="2",
        circuit_cooldown_seconds="600",
    )
    fake_llm.responder = lambda request: Reply.http_error(500)
    settings = make_settings(fake_telegram, fake_llm)
    db = settings.storage.database_path
    await start_bot(settings)

    # An FAQ question gets its confident FAQ answer; others an apology and a ticket.
    fake_telegram.user_text(1201, "How long does it take to get my refund?")
    faq = await fake_telegram.wait_for_messages(1201, 1, timeout=10)
    assert faq[0].startswith("Return parcels usually reach our warehouse")
    fake_telegram.user_text(1202, "My cat likes the blue sofa, is that a problem?")
    told = await fake_telegram.wait_for_messages(1202, 1, timeout=10)
    assert told[0].startswith(FAILED_PREFIX) and "#1" in told[0]
    assert values(db, "SELECT chat_id, reason FROM tickets") == [(1202, "llm_error")]
    assert len(fake_llm.requests) >= 4, "the failures were retried"

    # Two failed answers opened the breaker: later customers are answered without a call.
    calls = len(fake_llm.requests)
    for chat in range(1210, 1216):
        fake_telegram.user_text(chat, f"Question number {chat} about a wobbly table leg")
    for chat in range(1210, 1216):
        told = await fake_telegram.wait_for_messages(chat, 1, timeout=10)
        assert told[0].startswith(FAILED_PREFIX), told
    assert len(fake_llm.requests) == calls
    assert len(values(db, "SELECT id FROM tickets WHERE reason = 'llm_error'")) == 7
    await all_handled(fake_telegram, db)


async def test_customers_mid_retry_stop_waiting_once_the_breaker_opens(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    tune(
        knowledge_dirs[0],
        retry_budget_seconds="30",
        circuit_failures="1",
        circuit_cooldown_seconds="600",
    )
    fake_llm.script(
        Reply.http_error(503, retry_after=1.5),  # the first customer waits to retry...
        Reply.http_error(400, "bad request"),  # ...while the second one's failure opens the breaker
    )
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.user_text(1301, "First question about a wobbly table leg")
    await fake_llm.wait_for_requests(1)
    fake_telegram.user_text(1302, "Second question about a wobbly chair")
    for chat in (1301, 1302):
        told = await fake_telegram.wait_for_messages(chat, 1, timeout=10)
        assert told[0].startswith(FAILED_PREFIX)
    assert len(fake_llm.requests) == 2, "the first customer did not retry into an open breaker"


async def test_a_hanging_model_times_out_into_an_apology(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    tune(knowledge_dirs[0], read_timeout_seconds="0.3", retry_budget_seconds="1.0")
    fake_llm.responder = lambda request: Reply.hang()
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.user_text(1401, "My cat likes the blue sofa, is that a problem?")
    told = await fake_telegram.wait_for_messages(1401, 1, timeout=10)
    assert told[0].startswith(FAILED_PREFIX)
    assert len(fake_llm.requests) >= 2, "a timeout is retried within the budget"
    assert values(settings.storage.database_path, "SELECT reason FROM tickets") == [("llm_error",)]


async def test_a_stream_cut_midway_is_replaced_by_the_apology(
    fake_telegram, fake_llm, make_settings, start_bot
):
    cut = Reply.cut(after_chunks=4, content="Half of an answer that never ends well")
    cut.chunk_delay = 0.1  # slow enough for the preview to show before the cut
    fake_llm.script(cut)
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.user_text(1501, "My cat likes the blue sofa, is that a problem?")
    told = await fake_telegram.wait_for_messages(1501, 1, timeout=10)
    await all_handled(fake_telegram, settings.storage.database_path)
    # The partial text was only ever a draft; the one message is the truthful apology.
    assert len(told) == 1 and told[0].startswith(FAILED_PREFIX)
    assert any(d.get("text", "").startswith("Half") for d in fake_telegram.drafts(1501))
    assert len(fake_llm.requests) == 1, "text already shown is never streamed twice"


# ---------------------------------------------------------------- Bot API faults


async def test_telegram_429_on_send_is_waited_out(
    fake_telegram, fake_llm, make_settings, start_bot, caplog
):
    fake_telegram.fail_next("sendMessage", 429, retry_after=1)
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.user_text(1601, "Where is my parcel?")
    told = await fake_telegram.wait_for_messages(1601, 1, timeout=10)
    await all_handled(fake_telegram, settings.storage.database_path)
    assert told == ["Answer to: Where is my parcel?"]
    assert [c.status for c in fake_telegram.calls("sendMessage")] == [429, 200]
    no_errors_logged(caplog)


async def test_network_errors_on_send_are_retried(
    fake_telegram, fake_llm, make_settings, start_bot
):
    fake_telegram.fail_next("sendMessage", 0, count=2)  # connection dropped twice
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.user_text(1602, "Where is my parcel?")
    told = await fake_telegram.wait_for_messages(1602, 1, timeout=10)
    await all_handled(fake_telegram, settings.storage.database_path)
    assert told == ["Answer to: Where is my parcel?"]


async def test_polling_survives_server_errors(fake_telegram, fake_llm, make_settings, start_bot):
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.fail_next("getUpdates", 500, count=3)
    fake_telegram.user_text(1603, "Where is my parcel?")
    told = await fake_telegram.wait_for_messages(1603, 1, timeout=20)
    assert told == ["Answer to: Where is my parcel?"]
    assert [c.status for c in fake_telegram.calls("getUpdates")].count(500) == 3


async def test_a_blocked_customer_is_marked_and_not_retried(
    fake_telegram, fake_llm, make_settings, start_bot
):
    settings = make_settings(fake_telegram, fake_llm)
    db = settings.storage.database_path
    await start_bot(settings)
    fake_telegram.block(1604)
    fake_telegram.user_text(1604, "Where is my parcel?")
    await all_handled(fake_telegram, db)
    assert [c.status for c in fake_telegram.calls("sendMessage")] == [403]
    assert values(db, "SELECT blocked_at IS NOT NULL FROM customers WHERE chat_id = 1604") == [(1,)]


async def test_a_long_answer_is_split_and_arrives_whole(
    fake_telegram, fake_llm, make_settings, start_bot
):
    paragraphs = [f"Paragraph {n}: " + "all about shipping times. " * 60 for n in range(6)]
    answer = "\n\n".join(p.strip() for p in paragraphs)
    assert len(answer) > 2 * 4096
    fake_llm.responder = lambda request: answer
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.user_text(1605, "Tell me about shipping")
    told = await fake_telegram.wait_for_messages(1605, 3, timeout=10)
    await all_handled(fake_telegram, settings.storage.database_path)
    told = fake_telegram.sent_messages(1605)
    assert all(len(t) <= 4096 for t in told)
    assert "\n\n".join(told) == answer


async def test_a_redelivered_update_is_not_answered_twice(
    fake_telegram, fake_llm, make_settings, start_bot
):
    settings = make_settings(fake_telegram, fake_llm)
    db = settings.storage.database_path
    await start_bot(settings)
    update_id = fake_telegram.user_text(1606, "Where is my parcel?")
    await fake_telegram.wait_for_messages(1606, 1)
    await all_handled(fake_telegram, db)
    original = next(u for u in fake_telegram._history if u["update_id"] == update_id)
    fake_telegram.push_update(original)  # Telegram hands the same update over again
    fake_telegram.user_text(1606, "And when will it arrive?")
    await fake_telegram.wait_for_messages(1606, 2)
    await all_handled(fake_telegram, db)
    assert fake_telegram.sent_messages(1606) == [
        "Answer to: Where is my parcel?",
        "Answer to: And when will it arrive?",
    ]
    assert values(db, "SELECT attempts FROM inbox WHERE update_id = ?", update_id) == [(1,)]


async def test_an_update_that_keeps_failing_is_given_up_after_five_starts(tmp_path):
    """A poisoned update must not be retried forever on every start."""
    from bot.store.db import Database
    from bot.store.inbox import MAX_ATTEMPTS, Inbox

    async with Database(tmp_path / "inbox.sqlite3") as db:
        inbox = Inbox(db)
        payload = {"update_id": 7, "message": {"text": "boom"}}
        assert await inbox.add(7, "1", payload)
        assert await inbox.pending() == [payload]
        for _ in range(MAX_ATTEMPTS):  # each start stores it again
            await inbox.add(7, "1", payload)
        assert await inbox.pending() == []
        row = await db.fetchone("SELECT status FROM inbox WHERE update_id = 7")
        assert row["status"] == "failed"


async def test_a_customer_message_stored_again_is_the_same_row(tmp_path):
    """A crash replay stores the message again: one row, left out of its own history."""
    from bot.store.conversations import ConversationStore, Customer
    from bot.store.db import Database

    async with Database(tmp_path / "once.sqlite3") as db:
        store = ConversationStore(db)
        ann = Customer(5, first_name="Ann")
        await store.upsert_customer(ann)
        await store.upsert_customer(Customer(6))
        first = await store.add_message(5, "customer", "where is my order?", telegram_message_id=9)
        again = await store.add_message(5, "customer", "where is my order?", telegram_message_id=9)
        assert again == first
        history = await store.take_customer_message(
            ann, "where is my order?", kind="text", telegram_message_id=9, history_limit=10
        )
        assert history == []
        other_chat = await store.add_message(6, "customer", "hi", telegram_message_id=9)
        assert other_chat != first
        rows = await db.fetchall("SELECT id FROM messages WHERE chat_id = 5")
        assert [r["id"] for r in rows] == [first]
        await store.set_telegram_message_id(first, 100)
        row = await db.fetchone("SELECT telegram_message_id FROM messages WHERE id = ?", (first,))
        assert row["telegram_message_id"] == 100


async def test_copies_an_earlier_replay_stored_give_up_the_telegram_id(tmp_path):
    """m011: the first copy keeps the id, later ones lose it, and the key holds from then on."""
    import aiosqlite
    import pytest

    from bot.store.migrations import apply_migrations

    async with aiosqlite.connect(tmp_path / "old.sqlite3") as conn:
        await migrated_without(conn, "m011_customer_message_stored_once")
        t = "2026-01-01T10:00:00.000+00:00"
        await conn.executescript(
            f"""
            INSERT INTO customers (chat_id, created_at, updated_at) VALUES (1, '{t}', '{t}');
            INSERT INTO conversations (id, chat_id, started_at) VALUES (1, 1, '{t}');
            INSERT INTO messages (id, conversation_id, chat_id, role, text,
                                  telegram_message_id, created_at)
                VALUES (1, 1, 1, 'customer', 'hi', 7, '{t}'),
                       (2, 1, 1, 'bot', 'hello', 7, '{t}'),
                       (3, 1, 1, 'customer', 'hi', 7, '{t}');
            """
        )
        assert await apply_migrations(conn) == ["m011_customer_message_stored_once"]
        async with conn.execute("SELECT id, telegram_message_id FROM messages") as cursor:
            assert [tuple(r) for r in await cursor.fetchall()] == [(1, 7), (2, 7), (3, None)]
        with pytest.raises(sqlite3.IntegrityError):
            await conn.execute(
                "INSERT INTO messages (conversation_id, chat_id, role, text, "
                "telegram_message_id, created_at) VALUES (1, 1, 'customer', 'hi', 7, 'now')"
            )


async def test_the_inbox_keeps_updates_as_telegram_sent_them(tmp_path):
    """Stored from the raw JSON when it was kept, else rebuilt from the parsed update."""
    from telegram import Bot, Update

    from bot.store.db import Database
    from bot.store.inbox import Inbox
    from bot.telegram.processor import OrderedChatProcessor

    def raw(update_id: int) -> dict:
        return {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 1700000000,
                "chat": {"id": 42, "type": "private", "first_name": "Ann"},
                "from": {"id": 42, "is_bot": False, "first_name": "Ann"},
                "text": "hello",
                "some_future_field": {"kept": True},
            },
        }

    async def handled() -> None:
        pass

    bot = Bot("123:abc")
    async with Database(tmp_path / "inbox.sqlite3") as db:
        processor = OrderedChatProcessor(Inbox(db))
        processor.keep_payloads([raw(1)])
        await processor.do_process_update(Update.de_json(raw(1), bot), handled())
        await processor.do_process_update(Update.de_json(raw(2), bot), handled())
        assert [tuple(r) for r in await db.fetchall("SELECT status FROM inbox")] == [("done",)] * 2
        assert processor._payloads == {}
        await db.execute("UPDATE inbox SET status = 'pending'")
        stored = await processor.inbox.pending()
    assert stored[0] == raw(1)
    assert Update.de_json(stored[1], bot).to_dict() == Update.de_json(raw(2), bot).to_dict()


async def test_writes_that_queue_up_commit_together_but_fail_alone(tmp_path):
    """Group commit: one trip for writes that wait together; a failing one undoes only itself."""
    import asyncio

    import pytest

    from bot.store.db import Database

    async with Database(tmp_path / "group.sqlite3") as db:
        await db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")

        def insert(n: int):
            async def work(conn):
                await conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
                if n == 3:
                    raise ValueError("three")
                return n

            return work

        results = await asyncio.gather(
            *(db.write(insert(n)) for n in range(6)), return_exceptions=True
        )
        assert results[:3] == [0, 1, 2] and results[4:] == [4, 5]
        assert isinstance(results[3], ValueError)
        stored = [r[0] for r in await db.fetchall("SELECT n FROM t ORDER BY n")]
        assert stored == [0, 1, 2, 4, 5]
        with pytest.raises(sqlite3.IntegrityError):
            await db.write(insert(0))


async def test_writes_that_all_succeed_share_one_transaction_without_savepoints(tmp_path):
    """The common case costs one trip per statement: no savepoint around each write."""
    import asyncio

    from bot.store.db import Database

    async with Database(tmp_path / "group.sqlite3") as db:
        await db.execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
        statements: list[str] = []
        await db.conn.set_trace_callback(statements.append)

        def insert(n: int):
            async def work(conn):
                await conn.execute("INSERT INTO t (n) VALUES (?)", (n,))
                return n

            return work

        assert await asyncio.gather(*(db.write(insert(n)) for n in range(6))) == list(range(6))
        await db.conn.set_trace_callback(None)
        assert not [s for s in statements if "SAVEPOINT" in s.upper()]
        assert sum(s.startswith("BEGIN") for s in statements) <= 2
        assert [r[0] for r in await db.fetchall("SELECT n FROM t ORDER BY n")] == list(range(6))
