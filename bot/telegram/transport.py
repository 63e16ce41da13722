"""python-telegram-bot's HTTP transport, watched: what every Bot API answer tells the bot.

Each answer passes here, the retried ones included, so nothing is counted twice
or missed: whether Telegram is reachable (for ``/readyz``), how often it said
429, and how many messages reached customers (for ``/metrics``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from telegram.error import NetworkError
from telegram.request import HTTPXRequest

from bot.metrics import BotMetrics
from bot.telegram.ratelimit import SENDING_METHODS

# Failed Bot API calls in a row after which Telegram counts as unreachable.
UNREACHABLE_AFTER = 2


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
