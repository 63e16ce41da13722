"""Every Bot API call's way out: per-chat budgets, the bot-wide limit, and the retries.

python-telegram-bot's AIORateLimiter keeps a bot under 30 requests a second
overall and 20 a minute per group, but has no limit per private chat, where
Telegram allows about one message a second. Exceeding it earns a 429 that
pauses *all* requests, so every customer would pay for one chatty answer. Here
each private chat gets a token bucket (one message a second, a burst of three)
for the calls that post or edit messages, each group 20 a minute, and the
bot-wide limit applies when Telegram asks for it. Retries happen here and only
here (``bot.telegram.retry``), so one message is sent at most
``telegram.max_retries`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.telegram.retry import RetryPolicy

# Bot API methods that put a message into a chat (edits and drafts are not new messages).
SENDING_METHODS = frozenset(
    {
        "sendMessage",
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
# Calls that count against a private chat's budget of about one a second.
BUDGETED_METHODS = SENDING_METHODS | {
    "editMessageText",
    "editMessageCaption",
    "editMessageReplyMarkup",
}


class TokenBucket:
    """About ``rate`` sends a second with bursts of ``burst``, one send at a time.

    Telegram refills its bucket by the time between arrivals, which we cannot
    see; the time between the previous answer coming back and this send is
    never longer, so refilling by that keeps us inside Telegram's budget
    whatever the delays on the way. Holding the lock until the answer comes
    back also keeps one chat's messages in the order they were sent.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.stamp = clock()  # when the previous send came back
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        await self.lock.acquire()
        try:
            while True:
                now = self.clock()
                tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
                if tokens >= 1:
                    self.tokens = tokens - 1
                    self.stamp = now
                    return
                await asyncio.sleep((1 - tokens) / self.rate)
        except BaseException:
            self.lock.release()
            raise

    def release(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens)
        self.stamp = now
        self.lock.release()


class SlidingWindow:
    """At most ``limit`` requests in any ``period`` seconds, as the server counts them.

    Telegram counts requests per second as they arrive; a leaky bucket
    (AIORateLimiter's default) can let twice the limit through in one second
    after a quiet spell. A request holds its place while in flight and is dated
    when its answer comes back, which is never before Telegram saw it: so no
    delay on the way can squeeze more than ``limit`` into one of Telegram's seconds.
    """

    def __init__(
        self, limit: int, period: float = 1.0, clock: Callable[[], float] = time.monotonic
    ):
        self.limit = limit
        self.period = period
        self.clock = clock
        self.done: deque[float] = deque()
        self.in_flight = 0
        self.lock = asyncio.Lock()
        self.changed = asyncio.Event()

    async def take(self) -> None:
        async with self.lock:  # granted in arrival order
            while True:
                now = self.clock()
                while self.done and now - self.done[0] >= self.period:
                    self.done.popleft()
                if self.in_flight + len(self.done) < self.limit:
                    self.in_flight += 1
                    return
                self.changed.clear()
                wait = self.done[0] + self.period - now if self.done else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), wait)

    def release(self) -> None:
        self.in_flight -= 1
        self.done.append(self.clock())
        self.changed.set()


# Drafts and "typing…" are ephemeral and post nothing to the chat: they spend no
# message budget, and a failed one costs nothing but a moment of preview.
UNBUDGETED_METHODS = frozenset({"sendMessageDraft", "sendChatAction"})


# Telegram's documented limit for messages to one group or channel.
GROUP_MESSAGES_PER_MINUTE = 20


class ChatBudgetRateLimiter(BaseRateLimiter[int]):
    """Per-chat budgets always; the bot-wide limit when Telegram asks for it.

    Telegram documents about 30 messages a second for a bot as a whole, but
    answers to customers who just wrote are usually let through faster. So by
    default (``overall_mode="adaptive"``) the bot sends as fast as customers
    need until Telegram answers a 429; from then on, for ``cooldown`` seconds,
    it keeps every second under ``overall_per_second``. "always" applies that
    limit from the start; "off" never does (retry_after is still honoured).
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy,
        private_rate: float = 1.0,
        private_burst: float = 3.0,
        overall_mode: str = "adaptive",
        overall_per_second: int = 29,
        cooldown: float = 600.0,
    ) -> None:
        self.retry = retry
        self.private_rate = private_rate
        self.private_burst = private_burst
        self.overall_mode = overall_mode
        self.cooldown = cooldown
        self._overall = SlidingWindow(overall_per_second)
        self._limit_overall_until = float("inf") if overall_mode == "always" else 0.0
        self._buckets: dict[int, TokenBucket] = {}
        self._groups: dict[int | str, AsyncLimiter] = {}

    async def initialize(self) -> None:
        """Nothing to set up: budgets are made as chats appear."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def limiting_overall(self) -> bool:
        return time.monotonic() < self._limit_overall_until

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        if endpoint in UNBUDGETED_METHODS:
            return await callback(*args, **kwargs)
        chat_id = data.get("chat_id")
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(chat_id)  # type: ignore[arg-type]
        if endpoint in BUDGETED_METHODS and isinstance(chat_id, int) and chat_id > 0:
            if len(self._buckets) > 10_000:
                self._forget_idle()
            bucket = self._buckets.get(chat_id)
            if bucket is None:
                bucket = self._buckets[chat_id] = TokenBucket(self.private_rate, self.private_burst)
            await bucket.take()
            try:
                return await self._send(callback, args, kwargs, endpoint, data, rate_limit_args)
            finally:
                bucket.release()
        return await self._send(callback, args, kwargs, endpoint, data, rate_limit_args)

    async def _send(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        chat_id = data.get("chat_id")
        bot_wide = chat_id is not None
        group = self._group_limiter(chat_id)

        async def attempt() -> Any:
            # Checked on every attempt: retries after a 429 must fit the window too.
            windowed = bot_wide and self.limiting_overall
            if group is not None:
                await group.acquire()
            if windowed:
                await self._overall.take()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter:
                if self.overall_mode == "adaptive":
                    self._limit_overall_until = time.monotonic() + self.cooldown
                raise
            finally:
                if windowed:
                    self._overall.release()

        return await self.retry.run(attempt, endpoint)

    def _group_limiter(self, chat_id: Any) -> AsyncLimiter | None:
        """Groups and channels (negative or @name ids) get Telegram's 20 a minute."""
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(chat_id)
        if not ((isinstance(chat_id, int) and chat_id < 0) or isinstance(chat_id, str)):
            return None
        if len(self._groups) > 512:
            for key, limiter in list(self._groups.items()):
                if key != chat_id and limiter.has_capacity(limiter.max_rate):
                    del self._groups[key]
        limiter = self._groups.get(chat_id)
        if limiter is None:
            limiter = self._groups[chat_id] = AsyncLimiter(GROUP_MESSAGES_PER_MINUTE, 60)
        return limiter

    def _forget_idle(self) -> None:
        """Buckets refilled to full carry no state; drop them so memory stays flat."""
        now = time.monotonic()
        for chat_id, bucket in list(self._buckets.items()):
            if not bucket.lock.locked() and (now - bucket.stamp) * bucket.rate >= bucket.burst:
                del self._buckets[chat_id]
