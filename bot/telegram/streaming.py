"""Showing an answer while the model writes it, within Telegram's flood limits.

In private chats the text streams into a draft (``sendMessageDraft``), which
costs no message budget; the finished answer is then sent as a real message.
Where drafts are not available, one message is edited instead, at most once
per ``edit_interval`` and never with unchanged text: editing on every token is
what earns streaming bots flood bans of minutes. Every preview is the model's
Markdown converted as the final message will be, with the markup it has opened
but not yet closed closed for it, so the answer does not change its looks when
it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence

from telegram import Bot
from telegram.error import BadRequest, TelegramError

from bot.core import Button
from bot.store.inbox import ReplyJournal
from bot.telegram.formatting import Formatted, split_formatted
from bot.telegram.markdown import from_markdown
from bot.telegram.sender import formatted, keyboard, send_parts, split_text, with_plain_fallback

log = logging.getLogger(__name__)

# Room under Telegram's 4096 for the tail of a sentence still being written.
LIVE_LIMIT = 3900


class LiveReply:
    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        *,
        use_drafts: bool = True,
        draft_interval: float = 0.4,
        edit_interval: float = 1.0,
        first_delay: float = 0.06,
        journal: ReplyJournal | None = None,
        on_first_text: Callable[[], None] | None = None,
    ):
        self.bot = bot
        self.chat_id = chat_id
        self.journal = journal  # the update's: the final messages go through it
        self.mode = "draft" if use_drafts else "edit"
        self.draft_interval = draft_interval
        self.edit_interval = edit_interval
        self.first_delay = first_delay
        self.on_first_text = on_first_text  # e.g. stop "typing…": the text shows progress
        self.draft_id = random.randint(1, 2**31 - 1)
        self.text = ""
        self.consumed = 0  # characters already fixed in finished messages (edit mode)
        self.message_id: int | None = None  # the message being edited (edit mode)
        self._shown: Formatted | None = None
        self._last_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._model_done = False

    @property
    def started(self) -> bool:
        return bool(self.text)

    async def on_text(self, delta: str) -> None:
        """Called by the model client for every piece of text; never waits for Telegram."""
        if not self.text and self.on_first_text is not None:
            self.on_first_text()
        self.text += delta
        if self._timer is not None or (self._task is not None and not self._task.done()):
            return  # a preview is already on its way
        if not self._last_at:
            # An answer that is complete within a moment needs no preview: the
            # final message follows at once, and the draft would only cost a call.
            # A timer, not a sleeping task: most answers cancel it, and a task
            # costs several turns of the event loop to start and cancel.
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.first_delay, self._start_pump)
        else:
            self._task = asyncio.create_task(self._pump())

    def _start_pump(self) -> None:
        self._timer = None
        if not self._model_done:
            self._task = asyncio.create_task(self._pump())

    def model_done(self) -> None:
        """The model finished: the final message follows at once, so no more previews.

        Without this, a busy event loop can let ``first_delay`` run out between the
        model's last chunk and the final message, and nearly every answer would
        cost a draft call that is replaced a moment later.
        """
        self._model_done = True

    async def _pump(self) -> None:
        while True:
            interval = self.draft_interval if self.mode == "draft" else self.edit_interval
            wait = self._last_at + interval - time.monotonic()
            if self._last_at and wait > 0:
                await asyncio.sleep(wait)
            if self._model_done:
                return
            visible = self._visible()
            preview = self._preview(visible)
            if not preview.text.strip() or preview == self._shown:
                return
            try:
                await self._show(visible, preview)
            except TelegramError as error:
                # A 429 included: the rate limiter already waited and retried as
                # long as the retry policy allows; the final message follows it.
                log.info("streaming preview failed, the final answer still follows: %s", error)
                return
            self._last_at = time.monotonic()

    def _visible(self) -> str:
        """The part of the model's text the preview shows (edit mode fixes full messages)."""
        live = self.text[self.consumed :]
        if self.mode == "draft":
            return live
        if len(live) > LIVE_LIMIT:
            # Fix the current message at a paragraph boundary and continue in a new one.
            head = split_text(live, LIVE_LIMIT)[0]
            return head
        return live

    @staticmethod
    def _preview(visible: str) -> Formatted:
        """What the final message will look like so far: its first message's worth."""
        return split_formatted(from_markdown(visible, partial=True), LIVE_LIMIT)[0]

    async def _show(self, visible: str, preview: Formatted) -> None:
        if self.mode == "draft":
            try:
                await with_plain_fallback(self._send_draft, preview)
                self._shown = preview
                return
            except BadRequest as error:
                log.info("drafts unavailable (%s); streaming by editing a message", error)
                self.mode = "edit"
                self._shown = None
                visible = self._visible()
                preview = self._preview(visible)
        if self.message_id is None:
            message = await with_plain_fallback(self._send_message, preview)
            self.message_id = message.message_id
        else:
            try:
                await with_plain_fallback(self._edit_message, preview)
            except BadRequest as error:
                if "not modified" not in str(error).lower():
                    raise
        self._shown = preview
        live = self.text[self.consumed :]
        if len(live) > LIVE_LIMIT and len(visible) < len(live):
            self.consumed += len(visible)
            while self.consumed < len(self.text) and self.text[self.consumed].isspace():
                self.consumed += 1
            self.message_id = None
            self._shown = None

    def _send_draft(self, text: str, entities: list | None):
        return self.bot.send_message_draft(self.chat_id, self.draft_id, text, entities=entities)

    def _send_message(self, text: str, entities: list | None):
        return self.bot.send_message(self.chat_id, text, entities=entities)

    def _edit_message(self, text: str, entities: list | None, reply_markup=None):
        return self.bot.edit_message_text(
            text, self.chat_id, self.message_id, entities=entities, reply_markup=reply_markup
        )

    async def finish(
        self, final_text: str, buttons: Sequence[Button] = (), *, markdown: bool = True
    ) -> list[int]:
        """Put the final text in place of the preview; returns the ids of the messages used.

        ``markdown`` is False when the answer turned out not to be the model's text
        (a handoff notice), which goes out as written.
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        rest = (
            final_text[self.consumed :]
            if final_text.startswith(self.text[: self.consumed])
            else final_text
        )
        parts = formatted(rest, markdown)
        if self.mode == "draft" or self.message_id is None:
            sent = await send_parts(
                self.bot, self.chat_id, parts, buttons=buttons, journal=self.journal
            )
            return [m.message_id for m in sent]
        ids = [self.message_id]
        markup = keyboard(buttons) if len(parts) == 1 else None
        try:
            await with_plain_fallback(
                lambda text, entities: self._edit_message(text, entities, markup), parts[0]
            )
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                raise
            if markup is not None:
                await self.bot.edit_message_reply_markup(
                    self.chat_id, self.message_id, reply_markup=markup
                )
        if len(parts) > 1:
            sent = await send_parts(
                self.bot, self.chat_id, parts[1:], buttons=buttons, journal=self.journal
            )
            ids += [m.message_id for m in sent]
        return ids
