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
from bot.telegram.app import TelegramBot
from tests import real_llm
from tests.fakes import FakeLLM, FakeTelegram

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


@pytest.fixture(scope="session")
def llama_server() -> Iterator[real_llm.LlamaServer]:
    """A real llama.cpp server with SmolLM2 (tests/real_llm.py); skips the test without it."""
    yield from real_llm.session_server()
