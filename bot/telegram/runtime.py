"""What a bot needs in production around the Telegram application.

The HTTP server (``/healthz``, ``/readyz``, ``/metrics``, the console and, in
webhook mode, Telegram's webhook), the webhook's registration with Telegram,
and readiness, which adds "Telegram answers" to the checks of the services.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from telegram.ext import Application

from bot.console_web.pages import ConsolePages
from bot.http_server import HttpServer, service_readiness
from bot.metrics import BotMetrics
from bot.settings import Environment
from bot.telegram.transport import TelegramProbe
from bot.telegram.webhook import TelegramWebhook, resolve_webhook_secret, webhook_path

log = logging.getLogger(__name__)


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
        self.webhook: TelegramWebhook | None = None
        # (ConsoleAccess, RoleCheck) for the web console pages, given to ``start``.
        self.console: tuple[Any, Any] | None = None

    @property
    def webhook_mode(self) -> bool:
        return bool(self.env.webhook_url)

    async def start(
        self,
        services: Any,
        serve_http: bool,
        allowed_updates: list[str],
        console: tuple[Any, Any] | None = None,
    ) -> None:
        """Start the HTTP server (always in webhook mode) and register the webhook."""
        self.services = services
        self.console = console
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
            self.webhook = TelegramWebhook(self.webhook_secret, self.telegram)
            self.server.app.router.add_post(webhook_path(url), self.webhook.handle)
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
        if self.webhook is not None:
            self.webhook.stop_accepting()
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def readiness(self) -> dict[str, bool]:
        checks = await service_readiness(self.services)
        try:
            me = self.telegram.bot.bot  # getMe answered at start and is cached
        except RuntimeError:
            me = None
        telegram = me is not None and self.probe.reachable
        return {**checks, "telegram": telegram}
