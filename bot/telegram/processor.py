"""Chats in parallel, messages within a chat strictly in order, and nothing lost on a crash.

python-telegram-bot processes updates one at a time by default; its concurrent
mode breaks the order within a chat. Here every update takes its place in its
chat's queue the moment it arrives (before any await, so arrival order is
kept), is written to the durable inbox, then waits only for earlier updates of
the same chat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.store.inbox import Inbox

log = logging.getLogger(__name__)


def chat_key(update: object) -> str:
    """Forum topics are separate conversations, so the topic is part of the key."""
    if not isinstance(update, Update):
        return "other"
    message = update.effective_message
    chat = update.effective_chat
    if chat is None:
        user = update.effective_user
        return f"user:{user.id}" if user else "other"
    thread = message.message_thread_id if message is not None and message.is_topic_message else None
    return f"{chat.id}:{thread}" if thread else str(chat.id)


class OrderedChatProcessor(BaseUpdateProcessor):
    def __init__(self, max_concurrent_updates: int = 512):
        super().__init__(max_concurrent_updates)
        self.inbox: Inbox | None = None
        self._tails: dict[str, asyncio.Future[None]] = {}
        self._in_flight: set[int] = set()
        self.failed_updates: set[int] = set()  # filled by the error handler
        self.accepting = True
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def wait_idle(self, grace_seconds: float) -> bool:
        """Wait for the updates being handled to finish; False when the grace period ran out."""
        try:
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
            return True
        except TimeoutError:
            return False

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        if not self.accepting or (update_id is not None and update_id in self._in_flight):
            # Shutting down (it stays pending for the next start) or already being handled.
            _discard(coroutine)
            return
        key = chat_key(update)
        previous = self._tails.get(key)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[key] = mine
        self._active += 1
        self._idle.clear()
        if update_id is not None:
            self._in_flight.add(update_id)
        try:
            fresh = True
            if update_id is not None and self.inbox is not None:
                fresh = await self.inbox.add(update_id, key, update.to_dict())
            if previous is not None:
                await previous
            if not fresh:
                log.info("update %s was handled before; not answering it twice", update_id)
                _discard(coroutine)
                return
            await coroutine
            if update_id is not None and self.inbox is not None:
                if update_id in self.failed_updates:
                    # Left pending: the next start tries it again.
                    self.failed_updates.discard(update_id)
                else:
                    await self.inbox.mark_done(update_id)
        finally:
            if update_id is not None:
                self._in_flight.discard(update_id)
            mine.set_result(None)
            if self._tails.get(key) is mine:
                del self._tails[key]
            self._active -= 1
            if self._active == 0:
                self._idle.set()


def _discard(coroutine: Awaitable[Any]) -> None:
    close = getattr(coroutine, "close", None)
    if close is not None:
        close()
