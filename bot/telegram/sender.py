"""Sending text to Telegram so that it always arrives, and never as an error.

Texts go out as plain text plus entities, never with a parse mode, so no reply
can fail to parse; answers in Markdown keep their formatting that way
(``bot.telegram.markdown``), and should Telegram still refuse the formatting,
the same words go out plain. Anything longer than Telegram's 4096 characters is
split at a paragraph or sentence boundary; a blocked bot stops trying.
Nothing here retries: the rate limiter below us does, once for every call
(``bot.telegram.retry``). Inside an update, every chunk goes through the update's
reply journal (``journal``), so that handling the update again after a crash does not
repeat what was already delivered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from telegram import (
    Bot,
    Chat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
)
from telegram.error import BadRequest, Forbidden, RetryAfter

from bot.outcome import CHOICE_PREFIX, Button
from bot.store.inbox import ReplyJournal
from bot.telegram.formatting import TELEGRAM_TEXT_LIMIT, Formatted, split_formatted
from bot.telegram.markdown import from_markdown

log = logging.getLogger(__name__)


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Cut at the last paragraph break, else line break, else sentence end, else space."""
    return [part.text for part in split_formatted(Formatted(text), limit)]


def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    # Each FAQ entry offered to pick from is a row of its own, the rest share the last.
    choices = [b for b in buttons if b.data.startswith(f"{CHOICE_PREFIX}:")]
    others = [b for b in buttons if b not in choices]
    rows = [[b] for b in choices] + ([others] if others else [])
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.data) for b in row] for row in rows]
    )


T = TypeVar("T")


class RecipientGone(Exception):
    """The customer blocked the bot or the chat no longer exists: stop sending to it."""


async def gone_if_forbidden(call: Callable[[], Awaitable[T]]) -> T:
    """Make a Bot API call; a blocked bot or a vanished chat becomes ``RecipientGone``.

    Retries are not made here: the rate limiter makes them for every call.
    """
    try:
        return await call()
    except Forbidden as error:
        raise RecipientGone(str(error)) from error


async def with_plain_fallback(
    send: Callable[[str, list[MessageEntity] | None], Awaitable[T]], part: Formatted
) -> T:
    """Send with entities; when Telegram refuses them, the same words as plain text.

    Whatever Telegram objects to in the formatting (an entity, a link it does not
    take), the customer still gets the answer. "Not modified" is no refusal.
    """
    if part.entities:
        try:
            return await send(part.text, list(part.entities))
        except BadRequest as error:
            if "not modified" in str(error).lower():
                raise
            log.warning("Telegram refused the formatting (%s); sending plain text", error)
    return await send(part.text, None)


def formatted(text: str, markdown: bool) -> list[Formatted]:
    """The messages a text becomes: Markdown rendered, or plain; split for Telegram's limits."""
    return split_formatted(from_markdown(text) if markdown else Formatted(text))


async def send_text(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    buttons: Sequence[Button] = (),
    thread_id: int | None = None,
    reply_to: int | None = None,
    markdown: bool = False,
    journal: ReplyJournal | None = None,
) -> list[Message]:
    """Send ``text`` in as many messages as it needs; the buttons go on the last one.

    ``markdown`` renders it as Telegram formatting (answers); everything else,
    such as what customers and staff wrote, goes out exactly as written.
    """
    return await send_parts(
        bot,
        chat_id,
        formatted(text, markdown),
        buttons=buttons,
        thread_id=thread_id,
        reply_to=reply_to,
        journal=journal,
    )


async def send_parts(
    bot: Bot,
    chat_id: int,
    parts: Sequence[Formatted],
    *,
    buttons: Sequence[Button] = (),
    thread_id: int | None = None,
    reply_to: int | None = None,
    journal: ReplyJournal | None = None,
) -> list[Message]:
    """Send messages that already fit Telegram's limits, each through the reply journal."""
    sent: list[Message] = []
    for number, part in enumerate(parts, start=1):
        key = journal.key(chat_id, part.text) if journal is not None else None
        if journal is not None and key is not None:
            earlier = await journal.before_send(key)
            if earlier is not None:
                # Delivered before a crash; the customer already has it.
                sent.append(
                    Message(earlier, datetime.now(UTC), Chat(chat_id, Chat.PRIVATE), text=part.text)
                )
                continue
        markup = keyboard(buttons) if number == len(parts) else None
        kwargs: dict[str, Any] = {}
        if thread_id:
            kwargs["message_thread_id"] = thread_id
        if reply_to and number == 1:
            kwargs["reply_to_message_id"] = reply_to
            kwargs["allow_sending_without_reply"] = True

        def send(text: str, entities: list[MessageEntity] | None, markup=markup, kwargs=kwargs):
            return bot.send_message(chat_id, text, entities=entities, reply_markup=markup, **kwargs)

        try:
            message = await gone_if_forbidden(
                lambda part=part, send=send: with_plain_fallback(send, part)
            )
        except (RecipientGone, BadRequest, RetryAfter):
            # Refused by Telegram: not delivered, so nothing to be unsure about.
            if journal is not None and key is not None:
                await journal.not_sent(key)
            raise
        if journal is not None and key is not None:
            await journal.after_send(key, message.message_id)
        sent.append(message)
    return sent


class TypingIndicator:
    """Shows "typing…" only when an answer is slow to come, and at most every few seconds.

    Sending the chat action for every message costs a Bot API call per answer;
    most FAQ answers are sent before a customer would ever see the indicator.
    """

    def __init__(self, bot: Bot, chat_id: int, delay: float = 2.0, every: float = 4.5):
        self.bot = bot
        self.chat_id = chat_id
        self.delay = delay
        self.every = every
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> TypingIndicator:
        # A timer rather than a task sleeping through ``delay``: nearly every
        # answer cancels it, and a task costs several event-loop turns to
        # start and cancel, on every message.
        self._timer = asyncio.get_running_loop().call_later(self.delay, self._start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        self._timer = None
        self._task = asyncio.create_task(self._run())

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            try:
                await self.bot.send_chat_action(self.chat_id, "typing")
            except Exception as error:  # a cosmetic call must never break an answer
                log.debug("typing indicator failed: %s", error)
            await asyncio.sleep(self.every)
