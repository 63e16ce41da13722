"""A per-chat sending budget on top of python-telegram-bot's AIORateLimiter.

AIORateLimiter keeps the bot under 30 requests a second overall and 20 a
minute per group, but has no limit per private chat; Telegram allows about one
message a second there. Exceeding it earns a 429 that pauses *all* requests,
so every customer would pay for one chatty answer. Here each private chat gets
a token bucket (one message a second, a burst of three) for the calls that
post or edit messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

BUDGETED_METHODS = frozenset(
    {
        "sendMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
        "copyMessage",
        "forwardMessage",
        "sendPhoto",
        "sendDocument",
        "sendVoice",
        "sendAudio",
        "sendVideo",
        "sendAnimation",
        "sendSticker",
        "sendLocation",
    }
)


class TokenBucket:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.stamp = clock()
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        async with self.lock:  # FIFO: messages of one chat leave in the order they were sent
            while True:
                now = self.clock()
                self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                await asyncio.sleep((1 - self.tokens) / self.rate)


# The limit across all chats. Telegram counts requests in any one second, at
# most 30; AIORateLimiter's default is a leaky bucket holding 30 that, after a
# quiet spell, lets 30 requests through at once and 30 more within the same
# second, and Telegram answers the excess with 429s that pause every chat.
# Holding only OVERALL_BURST (an answer's draft and its message go out without
# waiting) and draining OVERALL_RATE a second keeps any second under 30, with
# room for requests that arrive closer together than they were sent.
OVERALL_BURST = 2
OVERALL_RATE = 27


class ChatBudgetRateLimiter(AIORateLimiter):
    def __init__(
        self, *, max_retries: int, private_rate: float = 1.0, private_burst: float = 3.0
    ) -> None:
        super().__init__(
            max_retries=max_retries,
            overall_max_rate=OVERALL_BURST,
            overall_time_period=OVERALL_BURST / OVERALL_RATE,
        )
        self.private_rate = private_rate
        self.private_burst = private_burst
        self._buckets: dict[int, TokenBucket] = {}
        self.retry_after_hits = 0

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        chat_id = data.get("chat_id")
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(chat_id)  # type: ignore[arg-type]
        if endpoint in BUDGETED_METHODS and isinstance(chat_id, int) and chat_id > 0:
            bucket = self._buckets.get(chat_id)
            if bucket is None:
                bucket = self._buckets[chat_id] = TokenBucket(self.private_rate, self.private_burst)
            await bucket.take()
            if len(self._buckets) > 10_000:
                self._forget_idle()
        return await super().process_request(
            callback, args, kwargs, endpoint, data, rate_limit_args
        )

    def _forget_idle(self) -> None:
        """Buckets refilled to full carry no state; drop them so memory stays flat."""
        now = time.monotonic()
        for chat_id, bucket in list(self._buckets.items()):
            if not bucket.lock.locked() and (now - bucket.stamp) * bucket.rate >= bucket.burst:
                del self._buckets[chat_id]
