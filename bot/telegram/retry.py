"""The one retry policy for Bot API calls, applied once, inside the rate limiter.

Every call the bot makes passes the rate limiter, so retrying there and nowhere
else bounds how often one message can reach Telegram: at most ``attempts``
times, whatever the mix of failures. A 429 waits exactly the ``retry_after``
Telegram names, and holds every other call back for as long, as Telegram's
flood control applies to the whole bot; a network error or a 5xx backs off,
0.5 s, 1 s, 2 s ... up to 8 s. A refusal (400, 403) is final at once: sending
the same request again would be refused again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from telegram.error import BadRequest, NetworkError, RetryAfter

log = logging.getLogger(__name__)

T = TypeVar("T")

RATE_LIMITED = "rate_limited"
NETWORK = "network"
RETRY_REASONS = (RATE_LIMITED, NETWORK)


def seconds(wait: timedelta | float) -> float:
    """``RetryAfter.retry_after`` in seconds, whichever type the library gives."""
    return wait.total_seconds() if isinstance(wait, timedelta) else float(wait)


class RetryPolicy:
    """At most ``attempts`` tries of one call; ``on_retry(reason)`` hears of each retry."""

    def __init__(
        self,
        attempts: int,
        *,
        on_retry: Callable[[str], None] | None = None,
        first_backoff: float = 0.5,
        max_backoff: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.attempts = attempts
        self.on_retry = on_retry
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.clock = clock
        self._paused_until = 0.0  # after a 429, no call goes out before this

    @property
    def paused(self) -> bool:
        return self.clock() < self._paused_until

    async def wait_out_pause(self) -> None:
        # A loop, not an Event: a 429 arriving meanwhile may extend the pause.
        while (left := self._paused_until - self.clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(left)

    async def run(self, call: Callable[[], Awaitable[T]], method: str = "") -> T:
        backoff = self.first_backoff
        for attempt in range(1, self.attempts + 1):
            await self.wait_out_pause()
            try:
                return await call()
            except RetryAfter as error:
                if attempt == self.attempts:
                    raise
                wait = seconds(error.retry_after)
                self._paused_until = max(self._paused_until, self.clock() + wait)
                log.info("Telegram asked to wait %.1f s (%s, attempt %d)", wait, method, attempt)
                reason = RATE_LIMITED
            except NetworkError as error:
                if isinstance(error, BadRequest) or attempt == self.attempts:
                    raise
                log.warning("Telegram network error (%s, attempt %d): %s", method, attempt, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                reason = NETWORK
            if self.on_retry is not None:
                self.on_retry(reason)
        raise AssertionError("unreachable")
