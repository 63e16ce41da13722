"""What the Bot API double recorded, how to wait for it, webhook delivery, remote control.

Kept apart from the request handling in telegram_api so each file reads on its own; the
methods here are mixed into FakeTelegram and use its state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from tests.fakes.telegram_state import Call, snapshot
from tests.fakes.waiting import wait_until

if TYPE_CHECKING:
    pass


class RecordingAndControl:
    """Mixin for FakeTelegram: inspection helpers, webhook pushes and the /_control/ API."""

    # ------------------------------------------------------------------ recording

    def calls(self, method: str | None = None) -> list[Call]:
        """Every finished Bot API call (optionally of one method), in order."""
        if method is None:
            return list(self._calls)
        return [c for c in self._calls if c.method.lower() == method.lower()]

    def bot_messages(self, chat_id: int | None = None, include_deleted: bool = False) -> list[dict]:
        """Messages the bot created (sent, copied, forwarded), in their current state."""
        return [
            self._public(m)
            for m in self._outbox
            if (chat_id is None or m["chat"]["id"] == chat_id)
            and (include_deleted or not m.get("_deleted"))
        ]

    def sent_messages(self, chat_id: int | None = None) -> list[str]:
        """Current text (or caption) of each message the bot created, oldest first."""
        return [m.get("text", m.get("caption", "")) for m in self.bot_messages(chat_id)]

    def message(self, chat_id: int, message_id: int) -> dict | None:
        stored = self._messages.get((chat_id, message_id))
        return None if stored is None else self._public(stored)

    def drafts(self, chat_id: int | None = None) -> list[dict]:
        return [snapshot(d) for d in self._drafts if chat_id is None or d["chat_id"] == chat_id]

    def chat_actions(self, chat_id: int | None = None) -> list[dict]:
        return [dict(a) for a in self._chat_actions if chat_id is None or a["chat_id"] == chat_id]

    def topics(self, chat_id: int) -> dict[int, Any]:
        """message_thread_id -> Topic (name, closed, ...) of a forum group."""
        return dict(self._chat(chat_id).topics)

    def update_ids(self) -> list[int]:
        """Ids of every update pushed so far that the bot's ``allowed_updates`` let through."""
        return [u["update_id"] for u in self._history if self._allowed(u)]

    @property
    def pending_updates(self) -> list[dict]:
        """Updates not yet acknowledged by getUpdates' offset (or by a webhook 2xx)."""
        return snapshot(self._pending)

    def clear_records(self) -> None:
        """Forget recorded calls and counters, keeping chats and messages."""
        self._calls.clear()
        self._drafts.clear()
        self._chat_actions.clear()
        self.webhook_deliveries.clear()
        self.too_many_requests = 0

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Return predicate()'s first truthy value, re-checked whenever the state changes."""
        return await wait_until(
            predicate,
            timeout,
            lambda: self._changed_event,
            lambda: f"; bot sent {self.sent_messages()!r}",
        )

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[str]:
        """Wait until the bot has created `count` messages in chat_id; returns their texts."""
        await self.wait_for(lambda: len(self.bot_messages(chat_id)) >= count, timeout)
        return self.sent_messages(chat_id)

    async def wait_for_calls(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Call]:  # noqa: ASYNC109
        await self.wait_for(lambda: len(self.calls(method)) >= count, timeout)
        return self.calls(method)

    async def wait_until_consumed(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every queued update has been acknowledged by the bot."""
        await self.wait_for(lambda: not self._pending, timeout)

    # ------------------------------------------------------------------ webhook delivery

    def deliver_to_webhook(self, url: str | None = None, secret_token: str | None = None) -> None:
        """POST updates to url instead of queuing them for getUpdates (retrying until 2xx)."""
        self.webhook["url"] = url or self.webhook.get("url", "")
        if secret_token is not None:
            self.webhook["secret_token"] = secret_token
        if not self.webhook["url"]:
            raise ValueError("no webhook URL registered")
        if self._webhook_task is None and self._runner is not None:
            self._webhook_task = asyncio.get_running_loop().create_task(self._webhook_worker())

    def _stop_webhook_delivery(self) -> None:
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            self._webhook_task = None

    async def _webhook_worker(self) -> None:
        delay = self.webhook_retry_delay
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                if not self._pending:
                    await self._changed_event.wait()
                    continue
                update = self._pending[0]
                if not self._allowed(update):
                    self._pending.pop(0)
                    continue
                headers = {}
                if self.webhook.get("secret_token"):
                    headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
                status, error = None, None
                try:
                    async with session.post(self.webhook["url"], json=update, headers=headers) as r:
                        status = r.status
                        await r.read()
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    error = repr(exc)
                self.webhook_deliveries.append(
                    {"update_id": update["update_id"], "status": status, "error": error}
                )
                if status is not None and 200 <= status < 300:
                    if self._pending and self._pending[0] is update:
                        self._pending.pop(0)
                    delay = self.webhook_retry_delay
                    self._changed()
                else:
                    self._changed()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)

    # ------------------------------------------------------------------ control API

    _CONTROL_ACTIONS = (
        "user_text",
        "user_message",
        "group_text",
        "group_message",
        "user_photo",
        "user_document",
        "user_voice",
        "user_audio",
        "user_video",
        "user_sticker",
        "user_location",
        "user_contact",
        "edited_text",
        "callback_query",
        "push_update",
        "block",
        "unblock",
        "fail_next",
        "set_delay",
        "fail_downloads",
        "delay_downloads",
        "add_group",
        "add_forum_group",
        "add_topic",
        "set_bot_member",
        "set_webhook_error",
        "deliver_to_webhook",
        "clear_records",
    )

    async def _handle_control_post(self, request: web.Request) -> web.StreamResponse:
        what = request.match_info["what"]
        body = await request.json() if request.can_read_body else {}
        if what == "wait_messages":
            try:
                texts = await self.wait_for_messages(
                    int(body["chat_id"]), int(body.get("count", 1)), float(body.get("timeout", 5))
                )
            except TimeoutError as exc:
                return web.json_response({"ok": False, "description": str(exc)}, status=408)
            return web.json_response({"ok": True, "result": texts})
        if what == "enforce_limits":
            self.enforce_limits = bool(body.get("enabled", True))
            return web.json_response({"ok": True, "result": self.enforce_limits})
        if what not in self._CONTROL_ACTIONS:
            return web.json_response({"ok": False, "description": "unknown action"}, status=404)
        try:
            result = getattr(self, what)(**body)
        except (TypeError, KeyError, ValueError) as exc:
            return web.json_response({"ok": False, "description": repr(exc)}, status=400)
        return web.json_response({"ok": True, "result": result})

    async def _handle_control_get(self, request: web.Request) -> web.StreamResponse:
        what = request.match_info["what"]
        query = request.query
        chat_id = int(query["chat_id"]) if "chat_id" in query else None
        if what == "calls":
            result: Any = [c.to_dict() for c in self.calls(query.get("method"))]
        elif what == "sent":
            result = self.sent_messages(chat_id)
        elif what == "messages":
            result = self.bot_messages(chat_id)
        elif what == "drafts":
            result = self.drafts(chat_id)
        elif what == "pending":
            result = self.pending_updates
        elif what == "stats":
            result = {
                "calls": len(self._calls),
                "sent": len(self._outbox),
                "pending_updates": len(self._pending),
                "too_many_requests": self.too_many_requests,
                "webhook_deliveries": len(self.webhook_deliveries),
            }
        else:
            return web.json_response({"ok": False, "description": "unknown query"}, status=404)
        return web.json_response({"ok": True, "result": result})
