"""Helpers shared by several test modules, so that no test module imports another.

Reading the bot's SQLite file, CLI environments, editing the copied YAML, waiting for
the bot to finish updates, reading its buttons and scraping its /metrics.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bot.knowledge.faq import FaqEntry
from bot.knowledge.loader import load_faq
from bot.settings import Settings, SupportSettings
from tests.fakes import TgUser

REPO = Path(__file__).resolve().parent.parent
BANKING = REPO / "bench" / "data" / "banking77"  # the FAQ and messages of the banking benchmark
SHOP_FAQ = REPO / "tests" / "data" / "shop_faq.yaml"  # a small shop's FAQ in three languages

# Variables that would point a subprocess at a real Telegram, model or staff group.
DEPLOYMENT_PREFIXES = ("TELEGRAM_", "LLM_", "STAFF_", "ADMIN_", "WEBHOOK_", "HTTP_")


def rows(path: Path, sql: str, *params) -> list[sqlite3.Row]:
    """Query the bot's database from outside, as an operator's tool would."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def values(path: Path, sql: str, *params) -> list[tuple]:
    """The same as ``rows``, as plain tuples, for comparing with literal rows."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def tickets(path: Path) -> list[sqlite3.Row]:
    return rows(path, "SELECT * FROM tickets ORDER BY id")


def cli_environment(
    knowledge_dirs: tuple[Path, Path], database: Path, **extra: str
) -> dict[str, str]:
    """The environment for ``python main.py ...``: temp copies of the YAML, no deployment values."""
    config, faq = knowledge_dirs
    env = {k: v for k, v in os.environ.items() if not k.startswith(DEPLOYMENT_PREFIXES)}
    env.update(
        CONFIG_DIR=str(config),
        FAQ_DIR=str(faq),
        DATABASE_PATH=str(database),
        PYTHONIOENCODING="utf-8",
    )
    env.update(extra)
    return env


def run_main(
    knowledge_dirs: tuple[Path, Path],
    database: Path,
    *args: str,
    stdin: str | None = None,
    **extra: str,
) -> subprocess.CompletedProcess[str]:
    """``python main.py ARGS`` in its own process, as an admin runs it, in ``cli_environment``."""
    return subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=REPO,
        env=cli_environment(knowledge_dirs, database, **extra),
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
    )


def drafts_unavailable(fake_telegram) -> None:
    """Make sendMessageDraft fail, as where drafts are not offered, so streaming edits instead."""
    fake_telegram.fail_when(
        lambda method, params: method.lower() == "sendmessagedraft",
        status=400,
        description="Bad Request: method is not available",
    )


def free_port() -> int:
    """A TCP port nothing listens on now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the copied YAML


def tune(config: Path, **settings: str) -> None:
    """Rewrite ``key: value`` lines of the copied bot.yaml (each key appears once)."""
    path = config / "bot.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        key = line.strip().split(":", 1)[0]
        if key in settings and not line.lstrip().startswith("#"):
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = f"{indent}{key}: {settings.pop(key)}"
    assert not settings, f"not in bot.yaml: {settings}"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def persona_message(config: Path, key: str, **values: str) -> str:
    """A message of the copied persona.yaml as the customer reads it."""
    persona = yaml.safe_load((config / "persona.yaml").read_text(encoding="utf-8"))
    fields = {
        "name": persona["name"],
        "company": persona["company"],
        "office_hours": persona.get("office_hours", ""),
    }
    fields.update(values)
    return persona["messages"][key].format(**fields).strip()


def faq_answer(faq: Path, entry_id: str) -> str:
    for path in sorted(faq.glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8"))["faq"]:
            if entry["id"] == entry_id:
                return entry["answer"].strip()
    raise KeyError(entry_id)


def faq_entries(path: Path) -> list[FaqEntry]:
    """The entries of one FAQ file, read and checked as the bot reads them."""
    return list(load_faq([path]).entries)


# ---------------------------------------------------------------- a running bot


def database(settings) -> Path:
    return Path(settings.storage.database_path)


async def handled(fake, settings, update_id: int) -> None:
    """Wait until the bot finished an update without error (the inbox marks it done).

    An update whose handler raised stays pending in the inbox, so this also proves
    that nothing went wrong, not merely that the update was fetched.
    """

    def done() -> bool:
        found = rows(database(settings), "SELECT status FROM inbox WHERE update_id = ?", update_id)
        return bool(found) and found[0]["status"] == "done"

    try:
        await fake.wait_for(done)
    except TimeoutError as error:
        raise AssertionError(f"update {update_id} was not handled cleanly") from error


async def all_handled(fake, db) -> None:
    """Wait until the bot has finished every update pushed so far: the inbox marks it done.

    This is the proof a "nothing happened" check waits for instead of sleeping: an
    update is marked done only after everything it made the bot send has been sent.
    An update whose handler failed is never done, so that fails the wait too.
    """
    pushed = set(fake.update_ids())

    def unfinished() -> set[int]:
        done = values(db, "SELECT update_id FROM inbox WHERE status = 'done'")
        return pushed - {row[0] for row in done}

    try:
        await fake.wait_for(lambda: not unfinished())
    except TimeoutError as error:
        raise AssertionError(f"updates not handled cleanly: {sorted(unfinished())}") from error


def no_errors_logged(caplog) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def buttons(message: dict) -> list[tuple[str, str | None]]:
    """(label, callback data) of each inline button under a message, row by row."""
    markup = message.get("reply_markup") or {}
    return [
        (b["text"], b.get("callback_data"))
        for row in markup.get("inline_keyboard", [])
        for b in row
    ]


def button_data(message: dict) -> list[str | None]:
    """The callback data of each inline button under a message, row by row."""
    return [data for _, data in buttons(message)]


# ---------------------------------------------------------------- the bot's HTTP server


def http_env(**extra: str) -> dict[str, str]:
    """Environment variables that make the bot serve HTTP on a free loopback port."""
    return {"HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(free_port()), **extra}


async def http_get(bot, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{bot.settings.env.http_port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def scrape(bot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The bot's /metrics as Prometheus reads it: (name, labels) -> value."""
    status, body = await http_get(bot, "/metrics")
    assert status == 200
    return parse_metrics(body)


def parse_metrics(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# ---------------------------------------------------------------- sweeps on a clock the test sets

TUESDAY_10_UTC = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)  # 11:00 in Berlin
SATURDAY_10_UTC = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def support_settings(**support: object) -> Settings:
    """Default settings but for the given ``support:`` values of bot.yaml."""
    return Settings(support=dataclasses.replace(SupportSettings(), **support))


async def opened_at(db, tickets, when: datetime) -> int:
    """Open a ticket for the ``sweep_stores`` customer, dated ``when``; its id."""
    ticket, _ = await tickets.open_or_join(11, 11, "user_request", "help", "customer:11")
    await db.execute(
        "UPDATE tickets SET created_at = ? WHERE id = ?", (when.isoformat(), ticket.id)
    )
    return ticket.id


# ---------------------------------------------------------------- the web console

# Who is who for the ``console_bot`` fixture (tests/conftest.py) and ``console_traffic``.
CONSOLE_STAFF = -1009000
CONSOLE_ADMIN = TgUser(id=77, first_name="Ada")
CONSOLE_AGENT = TgUser(id=501, first_name="Sam")
ALICE = TgUser(id=1001, first_name="Alice", username="alice", language_code="de")
BOB = TgUser(id=2002, first_name="Bob")
CONSOLE_LINK = re.compile(r"(https?://\S+/console/login\?token=[\w-]+)")


async def ask_for_link(fake, user: TgUser, command: str = "/console") -> str:
    """Send ``command`` as ``user`` and return the bot's answer, which should hold a link."""
    before = len(fake.bot_messages(user.id))
    fake.user_text(user.id, command, user)
    texts = await fake.wait_for_messages(user.id, before + 1, timeout=30)
    return texts[-1]


def link_in(text: str) -> str:
    found = CONSOLE_LINK.search(text)
    assert found, text
    return found.group(1)


async def console_traffic(fake) -> None:
    """Alice gets an answer and then asks for a person (a ticket); Bob only gets answers."""
    fake.user_text(ALICE.id, "How long does a refund take for order 4711?", ALICE)
    await fake.wait_for_messages(ALICE.id, 1, timeout=30)
    fake.user_text(ALICE.id, "I want to talk to a person", ALICE)
    await fake.wait_for_messages(ALICE.id, 2, timeout=30)
    fake.user_text(BOB.id, "Do you ship abroad?", BOB)
    await fake.wait_for_messages(BOB.id, 1, timeout=30)


async def migrated_without(conn, name: str) -> None:
    """Give ``conn`` every migration but ``name``, each recorded as applied, so that the
    next ``apply_migrations`` makes exactly the upgrade ``name`` makes."""
    from bot.store.migrations import MIGRATIONS

    await conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for known, migrate in MIGRATIONS:
        if known != name:
            await migrate(conn)
            await conn.execute("INSERT INTO migrations VALUES (?, 'then')", (known,))
