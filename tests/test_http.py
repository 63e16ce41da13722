"""The bot's HTTP server in polling mode: health, readiness, Prometheus metrics, and the logs.

Probes and scrapes are real HTTP requests to the running bot; traffic flows through the
Bot API and LLM doubles, so every counter is moved by the code path it describes.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import logging
import sqlite3
from collections.abc import Callable

import pytest

from bot.logging_setup import setup_logging
from bot.settings import Settings
from bot.telegram.app import TelegramBot
from tests.conftest import BOT_TOKEN
from tests.fakes import Reply, TgUser
from tests.helpers import http_env, http_get, parse_metrics, scrape, value

STAFF = -1009000
AGENT = TgUser(id=501, first_name="Sam")
LLM_KEY = "sk-test-0123456789abcdef"


@pytest.fixture
def serve(start_bot) -> Callable[[Settings], object]:
    """Start bots that poll the double and serve HTTP; stopped after the test."""
    return functools.partial(start_bot, serve_http=True)


async def test_healthz_and_readyz_when_all_is_well(fake_telegram, fake_llm, make_settings, serve):
    bot = await serve(make_settings(fake_telegram, fake_llm, **http_env()))
    assert (await http_get(bot, "/healthz"))[0] == 200
    status, body = await http_get(bot, "/readyz")
    assert status == 200, body
    assert '"database": true' in body and '"telegram": true' in body


async def test_readyz_fails_while_the_database_cannot_be_written(
    fake_telegram, fake_llm, make_settings, serve, tmp_path
):
    bot = await serve(make_settings(fake_telegram, fake_llm, **http_env()))
    assert (await http_get(bot, "/readyz"))[0] == 200
    # Another process holding the write lock: a write really fails (even as root).
    blocker = sqlite3.connect(tmp_path / "bot.sqlite3", isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        status, body = await http_get(bot, "/readyz")
        assert status == 503
        assert '"database": false' in body
        assert (await http_get(bot, "/healthz"))[0] == 200  # alive, just not ready
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert (await http_get(bot, "/readyz"))[0] == 200


async def test_readyz_fails_when_telegram_keeps_failing(
    fake_telegram, fake_llm, make_settings, serve
):
    bot = await serve(make_settings(fake_telegram, fake_llm, **http_env()))
    assert (await http_get(bot, "/readyz"))[0] == 200
    fake_telegram.fail_when(lambda method, params: True, status=502)  # every call fails
    fake_telegram.user_text(1001, "Hello?")  # ends the long poll in progress

    def failed_calls() -> int:
        return sum(c.status == 502 for c in fake_telegram.calls("getUpdates"))

    # Polling is sequential: a third failed call means the bot has seen the first two fail.
    await fake_telegram.wait_for(lambda: failed_calls() >= 3, timeout=30)
    status, body = await http_get(bot, "/readyz")
    assert status == 503 and '"telegram": false' in body
    assert '"database": true' in body


async def test_metrics_move_with_traffic(fake_telegram, fake_llm, make_settings, serve):
    fake_telegram.add_group(STAFF)
    bot = await serve(
        make_settings(fake_telegram, fake_llm, STAFF_CHAT_ID=str(STAFF), **http_env())
    )
    before = await scrape(bot)
    assert value(before, "support_bot_messages_in_total") == 0
    assert value(before, "support_bot_open_tickets", status="open") == 0
    version = bot.services.knowledge.current.version
    assert value(before, "support_bot_knowledge_info", version=version) == 1

    fake_telegram.user_text(1001, "How long does a refund take?")
    await fake_telegram.wait_for_messages(1001, 1)
    fake_telegram.user_text(1002, "I want to talk to a person")
    await fake_telegram.wait_for_messages(1002, 1)
    fake_llm.script(Reply.http_error(400, "bad request"))
    fake_telegram.user_text(1003, "Is this broken?")
    await fake_telegram.wait_for_messages(1003, 1)
    fake_telegram.fail_next("sendMessage", status=429, retry_after=1)
    fake_telegram.user_text(1004, "/help")
    await fake_telegram.wait_for_messages(1004, 1)

    after = await scrape(bot)
    assert value(after, "support_bot_messages_in_total") == 4
    assert value(after, "support_bot_messages_out_total") == 4
    assert value(after, "support_bot_replies_total", path="llm") == 1
    assert value(after, "support_bot_replies_total", path="handoff") == 2
    assert value(after, "support_bot_replies_total", path="notice") == 1
    assert value(after, "support_bot_llm_latency_seconds_count") == 1
    assert value(after, "support_bot_llm_errors_total", kind="http_4xx") == 1
    assert value(after, "support_bot_telegram_rate_limited_total") == 1
    assert value(after, "support_bot_escalations_total", reason="user_request") == 1
    assert value(after, "support_bot_escalations_total", reason="llm_error") == 1
    assert value(after, "support_bot_open_tickets", status="open") == 2

    # A staff reply makes a ticket active; the gauge is read from the database at scrape.
    card = next(m for m in fake_telegram.bot_messages(STAFF) if "#1" in m.get("text", ""))
    fake_telegram.group_text(STAFF, "On it!", AGENT, reply_to_message_id=card["message_id"])
    await fake_telegram.wait_for_messages(1002, 2)
    for _ in range(100):  # the ticket turns active right after the relay is sent
        later = await scrape(bot)
        if value(later, "support_bot_open_tickets", status="active"):
            break
        await asyncio.sleep(0.05)
    assert value(later, "support_bot_open_tickets", status="open") == 1
    assert value(later, "support_bot_open_tickets", status="active") == 1


async def test_two_bots_keep_their_own_metrics(
    fake_telegram, fake_llm, make_settings, serve, tmp_path
):
    first = await serve(make_settings(fake_telegram, fake_llm, **http_env()))
    fake_telegram.user_text(1001, "Where is my order?")
    await fake_telegram.wait_for_messages(1001, 1)
    second = TelegramBot(
        make_settings(
            fake_telegram, fake_llm, DATABASE_PATH=str(tmp_path / "second.sqlite3"), **http_env()
        )
    )
    # Built and registered side by side without clashing; it has seen nothing yet.
    assert value(await scrape(first), "support_bot_messages_in_total") == 1
    assert second.metrics.registry is not first.metrics.registry
    body, _ = second.metrics.render()
    assert value(parse_metrics(body.decode()), "support_bot_messages_in_total") == 0


@pytest.fixture
def capture_logs():
    """Configure logging as ``run`` does, into a buffer; put the root logger back afterwards."""
    root = logging.getLogger()
    level = root.level
    handlers: list[logging.Handler] = []

    def configure(settings: Settings) -> io.StringIO:
        stream = io.StringIO()
        handlers.append(setup_logging(settings, stream))
        return stream

    yield configure
    for handler in handlers:
        root.removeHandler(handler)
    root.removeHandler(setup_logging(Settings()))  # module defaults: no message text
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)


async def test_log_lines_never_contain_the_token_or_key(
    fake_telegram, fake_llm, make_settings, serve, capture_logs
):
    settings = make_settings(fake_telegram, fake_llm, LLM_API_KEY=LLM_KEY, **http_env())
    stream = capture_logs(settings)
    # httpx logs every request URL, token included, at INFO: let it, and rely on the filter.
    logging.getLogger("httpx").setLevel(logging.INFO)
    bot = await serve(settings)
    fake_telegram.fail_next("sendMessage", status=0)  # a network error with its traceback
    fake_telegram.user_text(1001, "My secret zebra question about refunds?")
    await fake_telegram.wait_for_messages(1001, 1)
    logging.getLogger("test").error(
        "calling https://api.example/bot%s/getMe with key %s", BOT_TOKEN, LLM_KEY
    )
    await bot.stop()
    output = stream.getvalue()
    assert "getMe" in output and "[REDACTED]" in output
    assert BOT_TOKEN not in output and BOT_TOKEN.split(":")[1] not in output
    assert LLM_KEY not in output
    assert "message in: chat 1001" in output
    assert "zebra" not in output  # customer text stays out unless log_message_text is on
    assert all(
        line.count(" INFO ") + line.count(" WARNING ") + line.count(" ERROR ") <= 1
        for line in output.splitlines()
    )


async def test_json_logs_and_message_text_when_allowed(
    fake_telegram, fake_llm, make_settings, serve, knowledge_dirs, capture_logs
):
    config, _ = knowledge_dirs
    text = (config / "bot.yaml").read_text()
    text = text.replace("format: text", "format: json").replace(
        "log_message_text: false", "log_message_text: true"
    )
    (config / "bot.yaml").write_text(text)
    settings = make_settings(fake_telegram, fake_llm, **http_env())
    stream = capture_logs(settings)
    bot = await serve(settings)
    fake_telegram.user_text(1001, "My zebra question?")
    await fake_telegram.wait_for_messages(1001, 1)
    await bot.stop()
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert any("zebra" in e["message"] for e in entries if e["logger"] == "bot.events")
    assert {"time", "level", "logger", "message"} <= set(entries[0])
