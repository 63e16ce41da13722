"""Shared fixtures: the fakes on loopback, a temporary database, and the bot running against them."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.settings import Settings
from bot.settings_loader import load_settings
from bot.store.conversations import ConversationStore, Customer
from bot.store.db import Database
from bot.store.tickets import TicketStore
from bot.telegram.app import TelegramBot
from tests import real_llm
from tests.fakes import FakeLLM, FakeTelegram
from tests.helpers import CONSOLE_ADMIN, CONSOLE_AGENT, CONSOLE_STAFF, http_env

REPO = Path(__file__).resolve().parent.parent
BOT_TOKEN = "123456:TEST-token"


@pytest.fixture(scope="session", autouse=True)
def shared_vector_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Bots started as processes share one file of FAQ vectors, as an operator's may.

    Embedding the shipped FAQ with the bundled model costs tens of seconds of CPU;
    in one process the model's own cache already spares the repeats. Settings built
    by ``make_settings`` leave it out, so tests of the cache itself see their own.
    """
    previous = os.environ.get("VECTOR_CACHE_PATH")
    # TEST_VECTOR_CACHE keeps the file between runs, so a developer pays for it once.
    kept = os.environ.get("TEST_VECTOR_CACHE")
    path = kept or str(tmp_path_factory.mktemp("vectors") / "vectors.sqlite3")
    os.environ["VECTOR_CACHE_PATH"] = path
    yield
    if previous is None:
        os.environ.pop("VECTOR_CACHE_PATH", None)
    else:
        os.environ["VECTOR_CACHE_PATH"] = previous


@pytest.fixture(scope="session")
def warm_vector_cache(shared_vector_cache: None, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The shipped FAQ's vectors in the shared file before a bot process first starts.

    Done in this process, whose model cache then serves the in-process tests too, so
    a process's start costs what a restart costs an operator, not a first install.
    """
    from bot.services import open_services

    async def warm() -> None:
        environ = {
            "CONFIG_DIR": str(REPO / "config"),
            "FAQ_DIR": str(REPO / "faq"),
            "DATABASE_PATH": str(tmp_path_factory.mktemp("warm") / "bot.sqlite3"),
            "VECTOR_CACHE_PATH": os.environ["VECTOR_CACHE_PATH"],
        }
        services = await open_services(load_settings(REPO / "config", environ))
        await services.close()

    # A thread of its own, so the event loop of the tests is left alone.
    thread = threading.Thread(target=lambda: asyncio.run(warm()))
    thread.start()
    thread.join()


@pytest.fixture
def knowledge_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Copies of the shipped config and FAQ, so a test may edit them."""
    config = tmp_path / "config"
    faq = tmp_path / "faq"
    shutil.copytree(REPO / "config", config)
    shutil.copytree(REPO / "faq", faq)
    return config, faq


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLM]:
    async with FakeLLM() as fake:
        yield fake


@pytest.fixture
def make_settings(tmp_path: Path, knowledge_dirs: tuple[Path, Path]) -> Callable[..., Settings]:
    """Settings built only from environment variables, as an operator would configure the bot."""
    config, faq = knowledge_dirs

    def build(
        telegram: FakeTelegram | None = None, llm: FakeLLM | None = None, **extra: str
    ) -> Settings:
        environ = {
            "CONFIG_DIR": str(config),
            "FAQ_DIR": str(faq),
            "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
        }
        if telegram is not None:
            environ["TELEGRAM_BOT_TOKEN"] = telegram.token
            environ["TELEGRAM_API_BASE_URL"] = telegram.base_url
        if llm is not None:
            environ["LLM_BASE_URL"] = llm.base_url
        environ.update(extra)
        return load_settings(config, environ)

    return build


@pytest.fixture
async def start_bot() -> AsyncIterator[Callable[[Settings], object]]:
    """Start TelegramBot instances (polling the fake) and stop them after the test."""
    bots: list[TelegramBot] = []

    async def start(settings: Settings, serve_http: bool = False) -> TelegramBot:
        bot = TelegramBot(settings)
        await bot.start(serve_http=serve_http)
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        await bot.stop()


@pytest.fixture
def console_bot(fake_telegram, fake_llm, make_settings, start_bot):
    """Start a bot with an admin, a staff group with one member, and its HTTP server on loopback.

    The web console's tests (tests/test_console_web.py, tests/test_console_browser.py).
    """
    fake_telegram.add_group(CONSOLE_STAFF)
    fake_telegram.set_member(CONSOLE_STAFF, CONSOLE_AGENT.id)

    async def start(**extra: str) -> TelegramBot:
        settings = make_settings(
            fake_telegram,
            fake_llm,
            STAFF_CHAT_ID=str(CONSOLE_STAFF),
            ADMIN_USER_IDS=str(CONSOLE_ADMIN.id),
            **http_env(**extra),
        )
        return await start_bot(settings, serve_http=True)

    return start


@pytest.fixture
async def sweep_stores(tmp_path: Path):
    """(database, tickets, conversations) on a real SQLite file with one customer, chat 11.

    What the periodic sweeps read (tests/test_sla.py, tests/test_customer_waits.py);
    ``tests.helpers.opened_at`` opens this customer's ticket at a given time.
    """
    async with Database(tmp_path / "bot.sqlite3") as db:
        conversations = ConversationStore(db)
        await conversations.upsert_customer(Customer(chat_id=11, user_id=11, first_name="Anna"))
        yield db, TicketStore(db), conversations


@pytest.fixture(scope="session")
def llama_server() -> Iterator[real_llm.LlamaServer]:
    """A real llama.cpp server with SmolLM2 (tests/real_llm.py); skips the test without it."""
    yield from real_llm.session_server()
