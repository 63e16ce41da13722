"""Chats in parallel, messages within a chat strictly in order, and nothing lost on a crash.

python-telegram-bot processes updates one at a time by default; its concurrent
mode breaks the order within a chat. Here every update takes its place in its
chat's queue the moment it arrives (before any await, so arrival order is
kept), is written to the durable inbox, then waits only for earlier updates of
the same chat. While it is handled, its handler asks ``journal_for`` for the
update's reply journal (see ``bot.store.inbox``) and passes it to every send,
and it is marked done only after its replies went out. On shutdown, updates that arrive are still stored, and handlers still
running when the grace period ends are cancelled: both stay pending for the
next start instead of being lost or holding the shutdown up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.store.inbox import DONE, NEW, Inbox, ReplyJournal

log = logging.getLogger(__name__)

# Raw updates kept for the inbox at most; more would only mean some never arrived here.
MAX_KEPT_PAYLOADS = 10_000


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
    def __init__(self, inbox: Inbox | None, max_concurrent_updates: int = 512):
        super().__init__(max_concurrent_updates)
        self.inbox = inbox  # None: nothing is kept across restarts
        self._tails: dict[str, asyncio.Future[None]] = {}
        self._in_flight: set[int] = set()
        self.failed_updates: set[int] = set()  # filled by the error handler
        self.accepting = True
        self._active = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._payloads: dict[int, dict[str, Any]] = {}
        self._admitted: dict[int, str] = {}  # inbox state of webhook updates stored early
        self._journals: dict[int, ReplyJournal] = {}  # of the updates being handled

    def journal_for(self, update: object) -> ReplyJournal | None:
        """The reply journal of an update being handled, for its handler to send through;
        None for an update the inbox does not keep."""
        update_id = update.update_id if isinstance(update, Update) else None
        return self._journals.get(update_id) if isinstance(update_id, int) else None

    def keep_payloads(self, updates: Any) -> None:
        """The updates as Telegram sent them, stored in the inbox as they are.

        Serialising the parsed ``Update`` back (``to_dict``) walks every object
        in it and cost ten times more than dumping the original JSON.
        """
        if not isinstance(updates, list):
            return
        payloads = self._payloads
        for item in updates:
            if isinstance(item, dict) and isinstance(item.get("update_id"), int):
                payloads[item["update_id"]] = item
        while len(payloads) > MAX_KEPT_PAYLOADS:
            del payloads[next(iter(payloads))]

    async def receive(self, update: Update, raw: dict[str, Any]) -> None:
        """Store a webhook update in the inbox before Telegram hears that it arrived.

        Telegram forgets an update once the webhook answers 200. Stored first, an
        update survives a crash right after that answer and is handled on the next
        start; if it cannot be stored, the error makes the webhook answer 500 and
        Telegram delivers it again later.
        """
        if self.inbox is None or not isinstance(update.update_id, int):
            return
        state = await self.inbox.admit(update.update_id, chat_key(update), raw)
        self._admitted[update.update_id] = state

    async def keep_for_next_start(self, update: Update, raw: dict[str, Any] | None = None) -> None:
        """Shutting down: Telegram already counts the update as delivered, so it is
        stored for the next start instead of being dropped."""
        if self.inbox is not None and isinstance(update.update_id, int):
            if raw is None:
                raw = self._payloads.pop(update.update_id, None)
            await self.inbox.add(update.update_id, chat_key(update), self._payload(update, raw))

    def _payload(self, update: Update, raw: dict[str, Any] | None) -> dict[str, Any]:
        return raw if raw is not None else update.to_dict()

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def wait_idle(self, grace_seconds: float) -> bool:
        """Shutting down: stop taking updates and give those in hand ``grace_seconds``.

        Handlers still running then are cancelled, so a hanging model call cannot
        hold the shutdown up; their updates stay pending for the next start.
        False when the grace period ran out.
        """
        self.accepting = False
        try:
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
            return True
        except TimeoutError:
            pass
        running = [t for t in self._tasks if not t.done()]
        for task in running:
            task.cancel()
        log.warning("cancelled %d unfinished update(s); they stay pending", len(running))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), 5.0)
        return False

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        raw = self._payloads.pop(update_id, None) if update_id is not None else None
        admitted = self._admitted.pop(update_id, None) if update_id is not None else None
        if update_id is not None and update_id in self._in_flight:
            _discard(coroutine)  # already being handled
            return
        if not self.accepting:
            _discard(coroutine)
            if isinstance(update, Update):
                await self.keep_for_next_start(update, raw)
            return
        turn = self._queue_up(chat_key(update), update_id)
        try:
            state = admitted
            if state is None:
                state = await self._admit(update, turn, raw)
            if turn.previous is not None:
                await _wait_for_turn(turn.previous)
            if state == DONE:
                log.info("update %s was handled before; not answering it twice", update_id)
                _discard(coroutine)
                return
            await self._handle(update_id, state, coroutine)
        finally:
            self._leave(turn)

    def _queue_up(self, key: str, update_id: int | None) -> _Turn:
        """Take the update's place in its chat's queue; no await here, so arrival order holds."""
        turn = _Turn(
            key,
            update_id,
            previous=self._tails.get(key),
            mine=asyncio.get_running_loop().create_future(),
            task=asyncio.current_task(),
        )
        self._tails[key] = turn.mine
        self._active += 1
        self._idle.clear()
        if update_id is not None:
            self._in_flight.add(update_id)
        if turn.task is not None:
            self._tasks.add(turn.task)
        return turn

    async def _admit(self, update: object, turn: _Turn, raw: dict[str, Any] | None) -> str:
        """The update's state in the inbox, stored there first if it is new."""
        if turn.update_id is None or self.inbox is None:
            return NEW
        return await self.inbox.admit(turn.update_id, turn.key, self._payload(update, raw))

    async def _handle(self, update_id: int | None, state: str, coroutine: Awaitable[Any]) -> None:
        """Run the handler with the update's reply journal; done only after its replies."""
        journal = None
        if update_id is not None and self.inbox is not None:
            journal = ReplyJournal(self.inbox.db, update_id, replay=state != NEW)
            self._journals[update_id] = journal
        await coroutine
        if update_id is not None and self.inbox is not None:
            if update_id in self.failed_updates:
                # Left pending: the next start tries it again.
                self.failed_updates.discard(update_id)
            else:
                await self.inbox.mark_done(update_id, journal)
            if journal is not None:
                journal.closed = True

    def _leave(self, turn: _Turn) -> None:
        """Done, failed or cancelled: the chat's next update may go."""
        if turn.update_id is not None:
            self._journals.pop(turn.update_id, None)
        if turn.task is not None:
            self._tasks.discard(turn.task)
        if turn.update_id is not None:
            self._in_flight.discard(turn.update_id)
        turn.mine.set_result(None)
        if self._tails.get(turn.key) is turn.mine:
            del self._tails[turn.key]
        self._active -= 1
        if self._active == 0:
            self._idle.set()


@dataclass(frozen=True)
class _Turn:
    """An update's place in its chat's queue, from arrival until it is handled."""

    key: str
    update_id: int | None
    previous: asyncio.Future[None] | None  # the chat's update before it, not yet done
    mine: asyncio.Future[None]  # set when this one is done
    task: asyncio.Task[Any] | None


async def _wait_for_turn(previous: asyncio.Future[None]) -> None:
    """Wait for the chat's earlier update; being cancelled here must not cancel it."""
    await asyncio.shield(previous)


def _discard(coroutine: Awaitable[Any]) -> None:
    close = getattr(coroutine, "close", None)
    if close is not None:
        close()
