"""Wires the parts together once, for the Telegram bot, the terminal and the CLI alike."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.core import StaffDesk, SupportCore
from bot.knowledge.live import KnowledgeBase
from bot.knowledge.loader import load_settings
from bot.llm import LLMClient
from bot.settings import Settings
from bot.store.conversations import ConversationStore
from bot.store.db import Database
from bot.store.inbox import Inbox
from bot.store.tickets import TicketStore


@dataclass
class Services:
    settings: Settings
    db: Database
    knowledge: KnowledgeBase
    conversations: ConversationStore
    tickets: TicketStore
    inbox: Inbox
    llm: LLMClient | None
    core: SupportCore

    async def close(self) -> None:
        if self.llm is not None:
            await self.llm.aclose()
        await self.db.close()


def settings_from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    config_dir = Path(environ.get("CONFIG_DIR") or "config")
    return load_settings(config_dir, environ)


async def open_services(settings: Settings, desk: StaffDesk | None = None) -> Services:
    """Open the database (running migrations), load the knowledge and build the core.

    Raises ConfigError when the persona or FAQ files are broken, before any
    customer could be answered from them.
    """
    env = settings.env
    knowledge = KnowledgeBase(Path(env.config_dir), Path(env.faq_dir))
    db = await Database(settings.storage.database_path).open()
    conversations = ConversationStore(db)
    tickets = TicketStore(db)
    llm = None
    if env.llm_configured:
        llm = LLMClient(env.effective_llm_base_url, env.llm_api_key, settings.llm)
    core = SupportCore(settings, knowledge, conversations, tickets, llm, desk)
    return Services(settings, db, knowledge, conversations, tickets, Inbox(db), llm, core)
