"""The bot as an operator runs it (``python main.py run``), killed and stopped mid-answer.

The Bot API and LLM doubles run in the test's process; the bot is a child process
talking to them over HTTP. SIGKILL gives the bot no chance to clean up, so what
survives is only what was on disk: every customer message must still be answered,
once, after the restart.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.fakes import FakeLLM, FakeTelegram
from tests.helpers import free_port, tune, values

TOKEN = "123456:KILL-token"


class BotProcess:
    """``python main.py run`` against the doubles, with its log kept for failures."""

    def __init__(self, tmp: Path, config: Path, faq: Path, tg: FakeTelegram, llm: FakeLLM):
        self.db = tmp / "bot.sqlite3"
        self.log = tmp / "bot.log"
        self.env = {
            **os.environ,
            "PTB_TIMEDELTA": "1",
            "CONFIG_DIR": str(config),
            "FAQ_DIR": str(faq),
            "DATABASE_PATH": str(self.db),
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE_URL": tg.base_url,
            "LLM_BASE_URL": llm.base_url,
            # /healthz and /metrics on a port of their own, so runs in parallel never clash.
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": str(free_port()),
        }
        for name in ("STAFF_CHAT_ID", "ADMIN_USER_IDS", "WEBHOOK_URL", "LLM_API_KEY"):
            self.env.pop(name, None)
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, tg: FakeTelegram) -> None:
        before = len(tg.calls("deleteWebhook"))
        with self.log.open("a") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "main.py",
                "run",
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=log,
            )
        self.starts += 1
        try:
            # Polling is about to begin once the bot clears any webhook.
            await tg.wait_for(
                lambda: len(tg.calls("deleteWebhook")) > before or self.proc.returncode is not None,
                60,  # a first start embeds the whole FAQ with the bundled model
            )
        except TimeoutError:
            raise AssertionError(self.log.read_text()[-3000:]) from None
        assert self.proc.returncode is None, self.log.read_text()[-3000:]

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        await self.proc.wait()

    async def terminate(self, timeout: float = 20) -> int:  # noqa: ASYNC109
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.proc.wait(), timeout)

    async def close(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def doubles() -> AsyncIterator[tuple[FakeTelegram, FakeLLM]]:
    async with FakeTelegram(token=TOKEN) as tg, FakeLLM() as llm:
        yield tg, llm


@pytest.fixture
async def bot_process(
    tmp_path, knowledge_dirs, doubles, warm_vector_cache
) -> AsyncIterator[BotProcess]:
    config, faq = knowledge_dirs
    tune(config, reload_poll_seconds="60")
    proc = BotProcess(tmp_path, config, faq, *doubles)
    yield proc
    await proc.close()


def question(customer: int, n: int) -> str:
    return f"Question {n} from customer {customer} about my parcel"


def answers_per_chat(tg: FakeTelegram, chats: list[int]) -> dict[int, list[str]]:
    return {chat: tg.sent_messages(chat) for chat in chats}


async def test_sigkill_twice_every_message_answered_once(bot_process, doubles):
    tg, llm = doubles
    llm.delay = 0.6  # slow enough that many answers are in flight at each kill
    customers = list(range(5001, 5101))
    bot = bot_process

    for c in customers:
        tg.user_text(c, question(c, 1))
    await bot.start(tg)
    await llm.wait_for(lambda: len(llm.requests) >= 40 and llm.in_flight >= 5, 30)
    for c in customers:
        tg.user_text(c, question(c, 2))
    # Kill points follow the model's progress, not Telegram's, so that they do not
    # coincide with replies in flight more often than chance would have it.
    await llm.wait_for(lambda: len(llm.requests) >= 120 and llm.in_flight >= 5, 40)
    await bot.kill()

    # Customers keep writing while the bot is down.
    for c in customers:
        tg.user_text(c, question(c, 3))
    await bot.start(tg)
    await llm.wait_for(lambda: len(llm.requests) >= 240 and llm.in_flight >= 3, 60)
    await bot.kill()

    await bot.start(tg)
    await tg.wait_for(lambda: all(len(tg.sent_messages(c)) >= 3 for c in customers), 60)
    # Every update finished (nothing pending that could still send) before counting.
    await tg.wait_for(
        lambda: values(bot.db, "SELECT COUNT(*) FROM inbox WHERE status != 'done'")[0][0] == 0, 20
    )
    assert await bot.terminate() == 0

    uncertain = values(bot.db, "SELECT COALESCE(SUM(uncertain_resends), 0) FROM inbox")[0][0]
    duplicates = 0
    for c in customers:
        texts = tg.sent_messages(c)
        expected = [f"Answer to: {question(c, n)}" for n in (1, 2, 3)]
        counts = Counter(texts)
        assert set(counts) == set(expected), (c, texts)
        duplicates += sum(n - 1 for n in counts.values())
        # In order: each question's first answer comes after the previous one's.
        assert sorted(expected, key=texts.index) == expected, (c, texts)
    # Only a reply whose request was in flight at a kill may arrive twice, and each
    # such resend is one the bot knew was uncertain and counted. How many are in
    # flight at once depends on the machine's speed (up to the 64 connections of
    # the pool); a tenth of the replies would mean resends beyond the ones in flight.
    assert duplicates <= min(uncertain, 30), (duplicates, uncertain)
    assert values(bot.db, "PRAGMA integrity_check") == [("ok",)]
    assert values(bot.db, "SELECT COUNT(*) FROM sent_replies")[0][0] == 0
    answered = values(bot.db, "SELECT COUNT(*) FROM inbox WHERE status = 'done'")[0][0]
    assert answered == 300
    print(f"kills: 2, replies: 300, uncertain resends: {uncertain}, duplicates: {duplicates}")


async def test_kill_between_chunks_of_a_long_answer_sends_only_the_rest(bot_process, doubles):
    tg, llm = doubles
    part_one = "First part of a long answer. " * 100  # ~2900 characters
    part_two = "Second part, still to come. " * 100
    llm.responder = lambda request: part_one.strip() + "\n\n" + part_two.strip()
    # The second message never gets through, so the bot is stuck retrying it.
    tg.fail_when(
        lambda method, p: method == "sendMessage" and "Second part" in str(p.get("text")),
        status=0,
    )
    await bot_process.start(tg)
    tg.user_text(7001, "Tell me everything about delivery times please")
    await tg.wait_for(lambda: any(c.status == 0 for c in tg.calls("sendMessage")), 20)
    assert [m[:17] for m in tg.sent_messages(7001)] == ["First part of a l"]
    await bot_process.kill()

    tg._faults.clear()  # the network is back
    await bot_process.start(tg)
    await tg.wait_for(lambda: len(tg.sent_messages(7001)) >= 2, 20)
    await tg.wait_for(
        lambda: values(bot_process.db, "SELECT status FROM inbox")[0][0] == "done", 20
    )
    assert await bot_process.terminate() == 0
    texts = tg.sent_messages(7001)
    assert texts == [part_one.strip(), part_two.strip()]


async def test_sigterm_lets_the_answer_in_flight_finish(bot_process, doubles):
    tg, llm = doubles
    llm.delay = 1.5
    await bot_process.start(tg)
    tg.user_text(7101, "Where is my parcel?")
    await llm.wait_for(lambda: llm.in_flight == 1, 10)
    assert await bot_process.terminate() == 0
    assert tg.sent_messages(7101) == ["Answer to: Where is my parcel?"]
    assert values(bot_process.db, "SELECT status FROM inbox") == [("done",)]


async def test_sigterm_after_grace_leaves_the_message_for_the_next_start(
    bot_process, doubles, knowledge_dirs
):
    tg, llm = doubles
    tune(knowledge_dirs[0], shutdown_grace_seconds="0.5")
    llm.delay = 30  # far beyond the grace period
    await bot_process.start(tg)
    tg.user_text(7201, "Where is my parcel?")
    await llm.wait_for(lambda: llm.in_flight == 1, 10)
    # Returns long before the model would have answered.
    assert await bot_process.terminate(timeout=15) == 0
    assert tg.sent_messages(7201) == []
    assert values(bot_process.db, "SELECT status FROM inbox") == [("pending",)]

    llm.delay = 0
    await bot_process.start(tg)
    texts = await tg.wait_for_messages(7201, 1, 20)
    await tg.wait_for(lambda: values(bot_process.db, "SELECT status FROM inbox") == [("done",)], 20)
    assert await bot_process.terminate() == 0
    assert texts == ["Answer to: Where is my parcel?"]
    assert tg.sent_messages(7201) == texts
