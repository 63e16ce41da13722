"""Small helpers shared by several test modules: reading the bot's SQLite file, CLI environments."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

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
