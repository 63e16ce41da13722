"""The bot's one HTTP server: Telegram's webhook, /healthz, /readyz, /metrics and /console.

Webhook updates are written to the durable inbox before the webhook answers
200, then put on python-telegram-bot's ``update_queue``, exactly where the
poller puts them, so the per-chat order of ``OrderedChatProcessor`` applies
to them unchanged.

The same server runs in polling mode too, so orchestrators probe and scrape a
bot the same way whichever mode it is in.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.error import NetworkError
from telegram.ext import Application
from telegram.request import HTTPXRequest

from bot.console_web.pages import ConsolePages
from bot.metrics import BotMetrics
from bot.settings import Environment
from bot.store.db import utcnow
from bot.telegram.ratelimit import SENDING_METHODS

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
RESERVED_PATHS = ("/healthz", "/readyz", "/metrics")
RESERVED_PREFIX = "/console"
# Failed Bot API calls in a row after which Telegram counts as unreachable.
UNREACHABLE_AFTER = 2


def resolve_webhook_secret(env: Environment) -> str:
    """WEBHOOK_SECRET, or a fresh one for this run.

    A generated secret is logged once so an operator can pin it; Telegram
    learns it from setWebhook on every start anyway, so a new one per run works.
    """
    if env.webhook_secret:
        return env.webhook_secret
    secret = secrets.token_urlsafe(32)
    log.warning(
        "WEBHOOK_SECRET is not set; generated one for this run: %s "
        "(set WEBHOOK_SECRET to keep it across restarts)",
        secret,
    )
    return secret


def webhook_path(url: str) -> str:
    path = urlsplit(url).path or "/"
    if path in RESERVED_PATHS or path == RESERVED_PREFIX or path.startswith(RESERVED_PREFIX + "/"):
        raise ValueError(f"WEBHOOK_URL: its path {path} is taken by the bot's own endpoints")
    return path


class TelegramProbe:
    """What the Bot API calls tell about Telegram: reachable or not, 429s, messages out."""

    def __init__(self, metrics: BotMetrics | None):
        self.metrics = metrics
        self.last_success: float | None = None
        self.failures_in_a_row = 0

    def answered(self, status: int, method: str, params: dict[str, Any]) -> None:
        if status >= 500:
            self.failed()
            return
        self.last_success = time.monotonic()
        self.failures_in_a_row = 0
        if self.metrics is None:
            return
        if status == 429:
            self.metrics.telegram_429.inc()
        elif status == 200 and method in SENDING_METHODS and _is_private(params.get("chat_id")):
            self.metrics.messages_out.inc()

    def failed(self) -> None:
        self.failures_in_a_row += 1

    def retried(self, reason: str) -> None:
        """A call is made again (see ``bot.telegram.retry``): ``rate_limited`` or ``network``."""
        if self.metrics is not None:
            self.metrics.telegram_retries.labels(reason).inc()

    @property
    def reachable(self) -> bool:
        return self.failures_in_a_row < UNREACHABLE_AFTER


def _is_private(chat_id: Any) -> bool:
    """Private chats have positive ids; groups and channels negative ones."""
    try:
        return int(chat_id) > 0
    except (TypeError, ValueError):
        return False


class ProbedRequest(HTTPXRequest):
    """python-telegram-bot's HTTP transport, reporting each answer to a ``TelegramProbe``.

    Every Bot API call passes here, including the ones the rate limiter retries
    after a 429, so nothing is counted twice or missed.
    """

    def __init__(
        self,
        probe: TelegramProbe,
        on_updates: Callable[[Any], None] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.probe = probe
        self.on_updates = on_updates

    def parse_json_payload(self, payload: bytes) -> dict[str, Any]:
        """Also hands ``getUpdates``' raw results to ``on_updates`` (see ``keep_payloads``)."""
        data = HTTPXRequest.parse_json_payload(payload)
        if self.on_updates is not None and isinstance(data, dict) and data.get("ok"):
            self.on_updates(data.get("result"))
        return data

    async def do_request(self, url: str, method: str, request_data: Any = None, **kwargs: Any):
        try:
            status, body = await super().do_request(url, method, request_data, **kwargs)
        except NetworkError:
            self.probe.failed()
            raise
        params = request_data.parameters if request_data is not None else {}
        self.probe.answered(status, url.rsplit("/", 1)[-1], params)
        return status, body


def database_writable(path: str, timeout: float = 1.0) -> bool:
    """Try a real write on a connection of its own, then roll it back.

    A separate connection with a short timeout answers quickly when another
    process holds the write lock, the file turned read-only or the disk is
    gone, and never touches the bot's own transaction.
    """
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO migrations (name, applied_at) VALUES (?, ?)",
            (f"readiness-probe-{secrets.token_hex(4)}", utcnow()),
        )
        conn.execute("ROLLBACK")
        return True
    except sqlite3.Error as error:
        log.warning("readiness: database is not writable: %s", error)
        return False
    finally:
        conn.close()


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        metrics: BotMetrics,
        readiness: Callable[[], Any],
        services: Callable[[], Any],
    ):
        self.host = host
        self.port = port
        self.metrics = metrics
        self._readiness = readiness
        self._services = services
        self.app = web.Application()
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self._telegram: Application | None = None
        self._secret: str | None = None
        self.accepting = True

    def serve_webhook(self, path: str, secret: str, telegram: Application) -> None:
        """Take Telegram's updates on ``path``; must be called before ``start``."""
        self._secret = secret
        self._telegram = telegram
        self.app.router.add_post(path, self._webhook)

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        addresses = self._runner.addresses
        if addresses and self.port == 0:
            self.port = int(addresses[0][1])
        log.info("HTTP server listening on %s:%s", self.host, self.port)

    async def stop(self) -> None:
        self.accepting = False
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        checks = await self._readiness()
        ready = all(checks.values())
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            await self.metrics.refresh(self._services())
        except Exception as error:  # the in-memory counters are still worth serving
            log.warning("metrics: could not read the database: %s", error)
        body, content_type = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _webhook(self, request: web.Request) -> web.Response:
        assert self._telegram is not None and self._secret is not None
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self._secret.encode()):
            log.warning("webhook call without the right secret token from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        if not self.accepting:
            # Shutting down: Telegram keeps the update and tries again later.
            return web.Response(status=503, text="stopping")
        try:
            data = await request.json()
            update = Update.de_json(data, self._telegram.bot)
        except (json.JSONDecodeError, ValueError, TypeError, KeyError) as error:
            log.warning("webhook: unreadable update: %s", error)
            return web.Response(status=400, text="bad update")
        if update is None:
            return web.Response(status=400, text="bad update")
        receive = getattr(self._telegram.update_processor, "receive", None)
        if receive is not None:
            try:
                await receive(update, data)
            except Exception as error:
                log.warning(
                    "webhook: could not store update %s, Telegram will send it again: %s",
                    update.update_id,
                    error,
                )
                return web.Response(status=500, text="not stored")
        await self._telegram.update_queue.put(update)
        return web.Response(text="ok")


class Runtime:
    """Everything a bot needs to run in production, around the Telegram application.

    Kept out of ``TelegramBot`` so that class stays about Telegram; it owns the
    HTTP server, the webhook registration and the readiness checks.
    """

    def __init__(
        self, env: Environment, telegram: Application, metrics: BotMetrics, probe: TelegramProbe
    ):
        self.env = env
        self.telegram = telegram
        self.metrics = metrics
        self.probe = probe
        self.services: Any = None
        self.server: HttpServer | None = None
        self.webhook_secret: str | None = None
        # (ConsoleAccess, RoleCheck) for the web console pages, set by the bot before start.
        self.console: tuple[Any, Any] | None = None

    @property
    def webhook_mode(self) -> bool:
        return bool(self.env.webhook_url)

    async def start(self, services: Any, serve_http: bool, allowed_updates: list[str]) -> None:
        """Start the HTTP server (always in webhook mode) and register the webhook."""
        self.services = services
        if services.llm is not None:
            services.llm.observer = self.metrics
        if not (serve_http or self.webhook_mode):
            return
        self.server = HttpServer(
            self.env.http_host,
            self.env.http_port,
            self.metrics,
            self.readiness,
            lambda: self.services,
        )
        if self.console is not None:
            access, roles = self.console
            ConsolePages(access, roles, lambda: self.services).register(self.server.app.router)
        url = self.env.webhook_url
        if url:
            self.webhook_secret = resolve_webhook_secret(self.env)
            self.server.serve_webhook(webhook_path(url), self.webhook_secret, self.telegram)
        await self.server.start()
        if url:
            # No drop_pending_updates: what customers sent while the bot was down is answered.
            await self.telegram.bot.set_webhook(
                url,
                secret_token=self.webhook_secret,
                allowed_updates=allowed_updates,
                drop_pending_updates=False,
            )
            log.info("webhook registered; Telegram posts updates to %s", urlsplit(url).path)

    async def stop(self) -> None:
        """Stop taking webhook calls first: Telegram keeps what it could not deliver."""
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def readiness(self) -> dict[str, bool]:
        services = self.services
        database = False
        knowledge = False
        if services is not None:
            path = services.db.path
            if path == ":memory:":
                database = True
            else:
                database = await asyncio.to_thread(database_writable, path)
            knowledge = services.knowledge.current is not None
        try:
            me = self.telegram.bot.bot  # getMe answered at start and is cached
        except RuntimeError:
            me = None
        telegram = me is not None and self.probe.reachable
        return {"database": database, "knowledge": knowledge, "telegram": telegram}
