"""The bot's one HTTP server: /healthz, /readyz, /metrics, and the routes others add.

It knows nothing of Telegram: the console (``bot.console_web``) and Telegram's
webhook (``bot.telegram.webhook``) add their routes to ``app.router`` before
``start``, and readiness is whatever checks the owner passes in.

The same server runs in polling mode too, so orchestrators probe and scrape a
bot the same way whichever mode it is in.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bot.metrics import BotMetrics
from bot.store.db import utcnow

log = logging.getLogger(__name__)

RESERVED_PATHS = ("/healthz", "/readyz", "/metrics")
RESERVED_PREFIX = "/console"


async def service_readiness(services: Any) -> dict[str, bool]:
    """The database takes writes and a knowledge version is being served."""
    if services is None:
        return {"database": False, "knowledge": False}
    path = services.db.path
    database = path == ":memory:" or await asyncio.to_thread(database_writable, path)
    return {"database": database, "knowledge": services.knowledge.current is not None}


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
