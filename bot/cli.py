"""The command line: a thin dispatcher over small command modules in ``bot.commands``.

The commands, their options and exit codes are a contract that scripts rely on;
README.md ("Commands") documents them, and tests/test_cli.py holds them to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import ConfigError, Problem

if TYPE_CHECKING:
    from bot.settings import Settings


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="Customer-service bot for Telegram. Without a command: run when "
        "TELEGRAM_BOT_TOKEN is set, otherwise chat in the terminal.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the Telegram bot (needs TELEGRAM_BOT_TOKEN)")
    chat = sub.add_parser("chat", help="talk to the bot in the terminal")
    chat.add_argument(
        "--db",
        metavar="PATH",
        help="keep the conversation in this database (default: a throw-away one)",
    )
    sub.add_parser("check", help="validate config and FAQ files")
    sub.add_parser("doctor", help="check Telegram, the model, the database: a checklist")
    _add_faq_commands(sub)
    _add_ticket_commands(sub)
    _add_report_commands(sub)
    backup = sub.add_parser("backup", help="copy the database safely while the bot runs")
    backup.add_argument("path", help="file (or directory) to write the copy to")
    return parser


def _add_faq_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    faq = sub.add_parser("faq", help="FAQ tools").add_subparsers(dest="faq_command", required=True)
    search = faq.add_parser("search", help="show the best FAQ entries for a query")
    search.add_argument("query", nargs="?", help="the query; without it, one per line on stdin")
    search.add_argument("--faq", action="append", metavar="PATH", help="FAQ file (repeatable)")
    search.add_argument("--top-k", type=_positive_int, default=None, metavar="K")
    search.add_argument("--json", action="store_true", help="one JSON object per query")


def _add_ticket_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tickets = sub.add_parser("tickets", help="ticket tools").add_subparsers(
        dest="tickets_command", required=True
    )
    listing = tickets.add_parser("list", help="list tickets")
    listing.add_argument("--status", choices=["open", "active", "resolved", "unresolved"])
    listing.add_argument("--json", action="store_true")
    show = tickets.add_parser("show", help="a ticket with its events and transcript")
    show.add_argument("id", type=int)
    export = tickets.add_parser("export", help="all tickets as CSV or JSON lines")
    export.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    for name, text in (
        ("close", "resolve a ticket (the customer is not messaged)"),
        ("reopen", "hand a resolved ticket to staff again"),
        ("note", "add an internal note to a ticket"),
    ):
        action = tickets.add_parser(name, help=text)
        action.add_argument("id", type=int)
        if name == "note":
            action.add_argument("text", nargs="+", help="the note")


def _add_report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """What the stored conversations say: numbers, regression cases, FAQ gaps."""
    stats = sub.add_parser("stats", help="deflection, escalations, response times, ratings")
    stats.add_argument("--days", type=float, default=30.0)

    evaluate = sub.add_parser("eval", help="run FAQ/answer regression cases")
    evaluate.add_argument("cases", help="a cases YAML file")
    evaluate.add_argument("--llm", action="store_true", help="use the configured LLM")

    gaps = sub.add_parser("gaps", help="questions the FAQ could not answer, grouped, with drafts")
    gaps.add_argument("--json", action="store_true", help="one JSON object per group")
    gaps.add_argument(
        "--days", type=_positive_int, default=None, metavar="N", help="only the last N days"
    )
    gaps.add_argument("--draft", metavar="PATH", help="write suggested FAQ entries here")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    try:
        return asyncio.run(_dispatch(args))
    except ConfigError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _check_database(path: str) -> None:
    """Open the database file once up front, so a wrong DATABASE_PATH is one clear line.

    Otherwise the mistake surfaces as a traceback from deep inside the first query.
    """
    if path == ":memory:":
        return
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA schema_version").fetchone()
    except (OSError, sqlite3.Error) as error:
        reason = getattr(error, "strerror", None) or str(error)
        message = f"{reason}; set DATABASE_PATH to a SQLite file"
        raise ConfigError([Problem(path, None, message)]) from error


async def _dispatch(args: argparse.Namespace) -> int:
    from bot.commands import knowledge_tools, ticket_tools
    from bot.services import settings_from_environment

    command = args.command
    if command == "check":
        return knowledge_tools.check()
    if command == "faq":
        return await knowledge_tools.faq_search(args)
    settings = settings_from_environment()
    if command == "doctor":
        from bot.commands import doctor

        return await doctor.run(settings)
    _check_database_for(command, args, settings)
    if command is None:
        command = _default_command(settings)
    if command == "run":
        return await _run_bot(settings)
    if command == "chat":
        from bot.console import chat

        return await chat(settings, db=getattr(args, "db", None))
    if command == "tickets":
        return await ticket_tools.run(args, settings)
    if command == "stats":
        return await ticket_tools.stats(args, settings)
    if command == "gaps":
        from bot.commands import gaps

        return await gaps.run(args, settings)
    if command == "backup":
        from bot.commands import backup

        return backup.run(args.path, settings)
    if command == "eval":
        from bot.commands import evaluate

        return await evaluate.run(args, settings)
    raise AssertionError(command)


def _check_database_for(command: str | None, args: argparse.Namespace, settings: Settings) -> None:
    """The commands that read the bot's database check it before they start."""
    if command in ("run", "tickets", "stats", "gaps") or (
        command is None and settings.env.telegram_bot_token
    ):
        _check_database(settings.storage.database_path)
    elif command == "chat" and getattr(args, "db", None):
        _check_database(args.db)  # the terminal's own database otherwise is a scratch file


def _default_command(settings: Settings) -> str:
    """Without a command: run the bot when there is a token, otherwise chat, and say why."""
    if settings.env.telegram_bot_token:
        return "run"
    print(
        "No TELEGRAM_BOT_TOKEN set: chatting in the terminal. Set it (from @BotFather) "
        "to run the Telegram bot.",
        file=sys.stderr,
    )
    return "chat"


async def _run_bot(settings: Settings) -> int:
    if not settings.env.telegram_bot_token:
        print("TELEGRAM_BOT_TOKEN: not set; get a token from @BotFather", file=sys.stderr)
        return 1
    from bot.logging_setup import setup_logging
    from bot.telegram.app import run_forever

    setup_logging(settings)
    await run_forever(settings)
    return 0
