"""Builds and runs the Telegram bot; its handlers are registered in ``bot.telegram.handlers``.

The bot drives python-telegram-bot's lifecycle itself (instead of
``run_polling``) so that tests, the CLI and a future webhook server can start
and stop it inside their own event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import (
    Application,
)

from bot.console_web.auth import ConsoleAccess, console_base_url
from bot.errors import ConfigError
from bot.metrics import BotMetrics
from bot.privacy import retention_loop
from bot.services import Services, open_services
from bot.settings import Settings
from bot.store.db import Database
from bot.store.inbox import Inbox
from bot.telegram import console_link
from bot.telegram.desk import TelegramDesk
from bot.telegram.handlers import command_menus, register_handlers
from bot.telegram.intake import IntakeQueue
from bot.telegram.media import TelegramFetcher
from bot.telegram.processor import OrderedChatProcessor
from bot.telegram.ratelimit import ChatBudgetRateLimiter
from bot.telegram.reminders import schedule_reminders
from bot.telegram.retry import RetryPolicy
from bot.telegram.runtime import Runtime
from bot.telegram.sender import send_text
from bot.telegram.transport import ProbedRequest, TelegramProbe

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]


def build_application(
    settings: Settings, processor: OrderedChatProcessor, probe: TelegramProbe | None = None
) -> Application:
    env = settings.env
    base = env.telegram_api_base_url
    probe = probe or TelegramProbe(None)
    builder = (
        Application.builder()
        .token(env.telegram_bot_token or "")
        .base_url(base)
        .base_file_url(base.replace("/bot", "/file/bot", 1) if "/bot" in base else base)
        .rate_limiter(
            ChatBudgetRateLimiter(
                retry=RetryPolicy(settings.telegram.max_retries, on_retry=probe.retried),
                overall_mode=settings.telegram.overall_limit,
                overall_per_second=settings.telegram.overall_messages_per_second,
            )
        )
        .concurrent_updates(processor)
        .update_queue(IntakeQueue())
        .request(ProbedRequest(probe, connection_pool_size=64))
        .get_updates_request(
            ProbedRequest(
                probe,
                on_updates=processor.keep_payloads,
                connection_pool_size=1,
                read_timeout=35,
            )
        )
    )
    if env.webhook_url:
        builder = builder.updater(None)  # updates come in through bot.telegram.webhook
    return builder.build()


class TelegramBot:
    def __init__(self, settings: Settings):
        self.settings = settings
        # The inbox's database opens with the services, before any update arrives.
        self.inbox = Inbox(Database(settings.storage.database_path))
        self.processor = OrderedChatProcessor(self.inbox)
        self.metrics = BotMetrics()
        self.probe = TelegramProbe(self.metrics)
        self.app = build_application(settings, self.processor, self.probe)
        self.runtime = Runtime(settings.env, self.app, self.metrics, self.probe)
        self.services: Services | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, polling: bool = True, serve_http: bool = False) -> None:
        """Polling, or webhook mode when WEBHOOK_URL is set (which always serves HTTP).

        ``serve_http`` starts /healthz, /readyz and /metrics in polling mode too.
        """
        self.services = await self._open_services()
        console = self._console()
        self._share_with_handlers(*console)
        self.services.knowledge.on_problem(self._tell_admins)
        register_handlers(self.app, self.settings)
        await self._connect()
        await self._replay_pending()
        if polling and self.app.updater is not None:
            await self.app.updater.start_polling(
                allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False, poll_interval=0
            )
        await self.runtime.start(self.services, serve_http, ALLOWED_UPDATES, console=console)
        self._start_background_tasks()

    async def _open_services(self) -> Services:
        """Every part of the bot, with a desk and its reminders when there is a staff group."""
        settings = self.settings
        staff_chat_id = settings.telegram.staff_chat_id
        desk_factory = None
        if staff_chat_id is not None:

            def desk_factory(tickets, conversations, knowledge) -> TelegramDesk:
                return TelegramDesk(self.app.bot, staff_chat_id, tickets, conversations, knowledge)

            schedule_reminders(self.app, settings)
        return await open_services(
            settings,
            inbox=self.inbox,
            desk_factory=desk_factory,
            fetcher=TelegramFetcher(self.app.bot),
            observer=self.metrics,
        )

    def _console(self) -> tuple[ConsoleAccess, console_link.ConsoleRoles]:
        """The web console's one-time links, and who in Telegram may ask for one."""
        assert self.services is not None
        base_url, note = console_base_url(self.settings.env)
        if note:
            log.info("%s (now %s)", note, base_url)
        console_access = ConsoleAccess(self.services.db, base_url)
        return console_access, console_link.ConsoleRoles(self.app.bot, self.settings)

    def _share_with_handlers(
        self, console_access: ConsoleAccess, console_roles: console_link.ConsoleRoles
    ) -> None:
        """What handlers find in ``bot_data`` (``bot.telegram.bot_data``)."""
        assert self.services is not None
        self.app.bot_data.update(
            services=self.services,
            desk=self.services.desk,
            processor=self.processor,
            metrics=self.metrics,
            console_access=console_access,
            console_roles=console_roles,
        )

    async def _connect(self) -> None:
        """Log in to Telegram, show customers the command menu, and start handling updates."""
        assert self.services is not None
        await self.app.initialize()
        me = self.app.bot.bot
        log.info("connected to Telegram as @%s", me.username)
        for language, menu in command_menus(self.services.knowledge.current.persona).items():
            with contextlib.suppress(TelegramError):
                await self.app.bot.set_my_commands(menu, language_code=language or None)
        await self.app.start()

    def _start_background_tasks(self) -> None:
        """Message texts blanked after ``retention_days``; knowledge files watched for edits."""
        assert self.services is not None
        settings = self.settings
        if settings.storage.retention_days > 0:
            self._tasks.append(
                asyncio.create_task(
                    retention_loop(self.services.db, settings.storage.retention_days)
                )
            )
        interval = settings.telegram.reload_poll_seconds
        if interval > 0:
            self._tasks.append(asyncio.create_task(self.services.knowledge.watch(interval)))

    async def _replay_pending(self) -> None:
        """Updates stored but not answered before the last stop are handled first, in order."""
        assert self.services is not None
        pending = await self.services.inbox.pending()
        if pending:
            log.info("handling %d message(s) left pending by the last run", len(pending))
        for payload in pending:
            update = Update.de_json(payload, self.app.bot)
            await self.app.update_queue.put(update)

    async def _tell_admins(self, error: ConfigError) -> None:
        assert self.services is not None
        text = self.services.knowledge.current.persona.staff_message(
            "knowledge_problems", problems="\n".join(str(p) for p in error.problems[:30])
        )
        for admin_id in self.settings.telegram.admin_user_ids:
            try:
                await send_text(self.app.bot, admin_id, text)
            except Exception as send_error:
                log.warning("could not tell admin %s: %s", admin_id, send_error)

    async def _keep_queued_updates(self) -> None:
        """Updates the poller took but the bot had no room for yet are still queued;
        Telegram counts them as delivered, so they go to the inbox for the next start."""
        queue = self.app.update_queue
        while not queue.empty():
            update = queue.get_nowait()
            queue.task_done()
            if isinstance(update, Update):
                await self.processor.keep_for_next_start(update)

    async def stop(self) -> None:
        """Stop taking updates, give replies in flight a grace period, keep the rest pending."""
        for task in self._tasks:
            task.cancel()
        await self.runtime.stop()
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        grace = self.settings.telegram.shutdown_grace_seconds
        if not await self.processor.wait_idle(grace):
            log.warning("shutdown grace period over; unfinished messages stay pending")
        await self._keep_queued_updates()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()
        if self.services is not None:
            await self.services.close()


def _settle_garbage_collector() -> None:
    """Start-up objects (modules, the FAQ index, settings) live as long as the process.

    Frozen, the cyclic collector no longer walks them on every full collection;
    a larger first generation lets the many short-lived objects of each message
    (updates, requests, rows) die young without triggering collections so often.
    """
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, 10_000), gen1, gen2)


async def run_forever(settings: Settings) -> None:
    """``python main.py run``: poll until SIGINT or SIGTERM."""
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    bot = TelegramBot(settings)
    await bot.start(serve_http=True)
    _settle_garbage_collector()
    log.info("bot is running; press Ctrl+C to stop")
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await bot.stop()
