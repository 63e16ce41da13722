"""Shared fixtures: the fakes on loopback, a temporary database, and the bot running against them."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from bot.knowledge.loader import load_settings
from bot.settings import Settings
from bot.telegram.app import TelegramBot
from tests import real_llm
from tests.fakes import FakeLLM, FakeTelegram

REPO = Path(__file__).resolve().parent.parent
BOT_TOKEN = "123456:TEST-token"


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

    async def start(settings: Settings) -> TelegramBot:
        bot = TelegramBot(settings)
        await bot.start()
        bots.append(bot)
        return bot

    yield start
    for bot in bots:
        await bot.stop()


@pytest.fixture(scope="session")
def llama_server() -> Iterator[real_llm.LlamaServer]:
    """A real llama.cpp server with SmolLM2 (tests/real_llm.py); skips the test without it."""
    yield from real_llm.session_server()
