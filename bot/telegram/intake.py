"""The update queue between Telegram and the handlers, with room for a bounded number.

python-telegram-bot starts a task for every update it takes from its queue, at once.
When 10,000 customers write in the same minute, that is 10,000 parsed updates and
tasks in memory, most of them only waiting for a turn. This queue hands out a new
update only while fewer than ``in_flight`` are being handled, and holds at most
``maxsize`` more. When both are full, putting blocks: the poller stops asking
Telegram for more and the webhook answers later, so the rest of a burst waits on
Telegram's side, where it is safe, instead of in the bot's memory.
"""

from __future__ import annotations

import asyncio
from typing import Any

IN_FLIGHT = 1024  # updates being handled or waiting for their chat's turn
WAITING = 256  # updates taken from Telegram and not yet handed out


class IntakeQueue(asyncio.Queue):
    def __init__(self, in_flight: int | None = None, maxsize: int | None = None) -> None:
        super().__init__(WAITING if maxsize is None else maxsize)
        self.in_flight_limit = IN_FLIGHT if in_flight is None else in_flight
        self.taken = 0  # handed out by get() and not yet marked done
        self.peak = 0  # the most ever handed out at once
        self._room = asyncio.Event()
        self._room.set()

    async def get(self) -> Any:
        while self.taken >= self.in_flight_limit:
            self._room.clear()
            await self._room.wait()
        item = await super().get()
        self.taken += 1
        self.peak = max(self.peak, self.taken)
        return item

    def task_done(self) -> None:
        """Called by python-telegram-bot once an update is handled: room for the next."""
        super().task_done()
        if self.taken > 0:  # updates dropped at shutdown were never counted as taken
            self.taken -= 1
        self._room.set()
