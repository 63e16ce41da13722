"""Telegram's webhook: updates posted to us, stored durably before we answer 200.

Webhook updates are written to the durable inbox before the webhook answers
200, then put on python-telegram-bot's ``update_queue``, exactly where the
poller puts them, so the per-chat order of ``OrderedChatProcessor`` applies
to them unchanged. The route is served by the bot's HTTP server
(``bot.http_server``), which knows nothing of Telegram.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.http_server import RESERVED_PATHS, RESERVED_PREFIX
from bot.settings import Environment

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


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


class TelegramWebhook:
    """The aiohttp handler for Telegram's posts; refuses them once the bot is stopping."""

    def __init__(self, secret: str, telegram: Application):
        self.secret = secret
        self.telegram = telegram
        self.accepting = True

    def stop_accepting(self) -> None:
        """From now on Telegram hears 503 and keeps its updates for the next start."""
        self.accepting = False

    async def handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("webhook call without the right secret token from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        if not self.accepting:
            # Shutting down: Telegram keeps the update and tries again later.
            return web.Response(status=503, text="stopping")
        try:
            data = await request.json()
            update = Update.de_json(data, self.telegram.bot)
        except (json.JSONDecodeError, ValueError, TypeError, KeyError) as error:
            log.warning("webhook: unreadable update: %s", error)
            return web.Response(status=400, text="bad update")
        if update is None:
            return web.Response(status=400, text="bad update")
        receive = getattr(self.telegram.update_processor, "receive", None)
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
        await self.telegram.update_queue.put(update)
        return web.Response(text="ok")
