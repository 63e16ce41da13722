"""Each customer's message budget (``conversation.rate_limit_per_minute``), and the
messages put off by it, answered later in order as fast as the budget allows.

The windows of customers quiet for a whole window are dropped, once a window:
otherwise every customer ever seen would keep one for the life of the process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger("bot.core")

T = TypeVar("T")


class CustomerRateLimit(Generic[T]):
    """``answer`` is called for each put-off item, in order, once the budget has room."""

    def __init__(
        self,
        per_minute: int,
        answer: Callable[[T], Awaitable[None]],
        window_seconds: float = 60.0,
    ):
        self.per_minute = per_minute
        self.window_seconds = window_seconds  # the budget counts over this window
        self._answer = answer
        self._recent: dict[int, deque[float]] = defaultdict(deque)
        self._noticed: set[int] = set()
        self._deferred: dict[int, deque[T]] = {}
        self._draining: dict[int, asyncio.Task[None]] = {}
        self._swept_at = time.monotonic()

    @property
    def tracked_customers(self) -> int:
        """How many customers' windows are kept (flat once the quiet ones are dropped)."""
        return len(self._recent)

    def holds_back(self, chat_id: int) -> bool:
        """Over the budget, or with messages still waiting: this one must wait too
        (counting it if not)."""
        return bool(self._deferred.get(chat_id)) or self._over(chat_id)

    def defer(self, chat_id: int, item: T) -> bool:
        """Put ``item`` off; True the first time, when the customer should be told."""
        self._deferred.setdefault(chat_id, deque()).append(item)
        if chat_id not in self._draining:
            self._draining[chat_id] = asyncio.create_task(self._drain(chat_id))
        first = chat_id not in self._noticed
        self._noticed.add(chat_id)
        return first

    def take_deferred(self, chat_id: int) -> list[T]:
        """The items still waiting, now taken from the queue (a person answers them)."""
        queue = self._deferred.get(chat_id)
        if not queue:
            return []
        items = list(queue)
        queue.clear()
        return items

    async def wait_for_room(self, chat_id: int) -> None:
        """For a door with nobody to answer later for: wait here for the window."""
        await asyncio.sleep(self._wait(chat_id))
        self._take_slot(chat_id)

    async def _drain(self, chat_id: int) -> None:
        queue = self._deferred[chat_id]
        try:
            while queue:
                await asyncio.sleep(self._wait(chat_id))
                if not self._take_slot(chat_id):
                    continue
                item = queue.popleft()
                try:
                    await self._answer(item)
                except Exception:  # stored either way; the next message is still answered
                    log.exception("could not answer a put-off message of chat %s", chat_id)
        finally:
            self._deferred.pop(chat_id, None)
            self._draining.pop(chat_id, None)
            self._noticed.discard(chat_id)

    def _window(self, chat_id: int, now: float) -> deque[float]:
        window = self._recent[chat_id]
        while window and now - window[0] > self.window_seconds:
            window.popleft()
        return window

    def _wait(self, chat_id: int) -> float:
        """Seconds until the customer's window has room for one more message."""
        now = time.monotonic()
        window = self._window(chat_id, now)
        if self.per_minute <= 0 or len(window) < self.per_minute:
            return 0.0
        return self.window_seconds - (now - window[0]) + 0.01

    def _take_slot(self, chat_id: int) -> bool:
        if self._wait(chat_id) > 0:
            return False
        self._recent[chat_id].append(time.monotonic())
        return True

    def _over(self, chat_id: int) -> bool:
        if self.per_minute <= 0:
            return False
        now = time.monotonic()
        self._forget_quiet_windows(now)
        window = self._window(chat_id, now)
        if len(window) >= self.per_minute:
            return True
        window.append(now)
        if len(window) == 1:
            self._noticed.discard(chat_id)
        return False

    def _forget_quiet_windows(self, now: float) -> None:
        if now - self._swept_at < self.window_seconds:
            return
        self._swept_at = now
        quiet = [
            chat
            for chat, window in self._recent.items()
            if (not window or now - window[-1] > self.window_seconds)
            and not self._deferred.get(chat)
        ]
        for chat in quiet:
            del self._recent[chat]
            self._noticed.discard(chat)
