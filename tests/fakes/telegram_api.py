"""A Telegram Bot API server double, reachable over real HTTP on 127.0.0.1.

The bot under test talks to it through python-telegram-bot exactly as it would to
api.telegram.org, so encoding, error mapping, retries and long polling are all exercised.
Run it as a process (``python -m tests.fakes.telegram_api --port 8081``) for benchmarks and
crash tests; a JSON control API under ``/_control/`` then injects updates and faults.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.telegram_chat_methods import ChatMethods
from tests.fakes.telegram_control import RecordingAndControl
from tests.fakes.telegram_files import FileServing
from tests.fakes.telegram_methods import BotApiMethods, Files, Params
from tests.fakes.telegram_state import (
    ApiError,
    Call,
    ChatState,
    FloodLimits,
    TgUser,
    snapshot,
    too_many_requests,
)
from tests.fakes.telegram_updates import UpdateInjection
from tests.fakes.waiting import serve_until_signalled

__all__ = ["Call", "FakeTelegram", "TgUser"]

DEFAULT_TOKEN = "123456789:AAFakeTokenForTests_abcdefghijklmnop"

# Values that must stay strings even when they look like numbers or JSON.
_TEXT_PARAMS = {
    "text",
    "caption",
    "data",
    "name",
    "description",
    "short_description",
    "title",
    "url",
    "secret_token",
    "query",
    "first_name",
    "last_name",
    "phone_number",
    "callback_query_id",
    "inline_message_id",
    "file_id",
    "action",
    "parse_mode",
    "language_code",
    "emoji",
    "icon_custom_emoji_id",
    "address",
    "message_effect_id",
    "business_connection_id",
    *("photo", "document", "voice", "audio", "video", "animation", "sticker", "video_note"),
}
_TARGETED_PREFIXES = ("send", "copy", "forward", "edit")
_FLOOD_LIMITED = {
    "sendmessage",
    "sendphoto",
    "senddocument",
    "sendvoice",
    "sendaudio",
    "sendvideo",
    "sendanimation",
    "sendsticker",
    "sendlocation",
    "copymessage",
    "forwardmessage",
    "editmessagetext",
    "editmessagecaption",
    "editmessagereplymarkup",
}
_STATUS_TEXT = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_file_ids = itertools.count(1)


def _decode(key: str, value: Any) -> Any:
    """Undo python-telegram-bot's form encoding: every value arrives as a string."""
    if not isinstance(value, str) or key in _TEXT_PARAMS:
        return value
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    if isinstance(decoded, float) and value.lower() in ("nan", "infinity", "-infinity"):
        return value
    return decoded


class _Fault:
    def __init__(self, status, description, retry_after, count, predicate=None):
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.count = count
        self.predicate = predicate

    def error(self) -> ApiError:
        if self.status == 429:
            retry_after = 1 if self.retry_after is None else self.retry_after
            return (
                too_many_requests(retry_after)
                if not self.description
                else ApiError(429, self.description, retry_after)
            )
        description = self.description or _STATUS_TEXT.get(self.status, "Error")
        return ApiError(self.status, description, self.retry_after)


class FakeTelegram(RecordingAndControl, UpdateInjection, FileServing, BotApiMethods, ChatMethods):
    """The Bot API as seen by one bot token; also a recorder of everything the bot did."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "shop_support_bot",
        first_name: str = "Shop Support",
        enforce_limits: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.token = token
        self.host = host
        self.port = port
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456789
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": first_name,
            "username": username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.enforce_limits = enforce_limits
        self.limits = FloodLimits(clock)
        self.too_many_requests = 0
        self.webhook: dict[str, Any] = {"url": ""}
        self.webhook_deliveries: list[dict] = []
        self.webhook_retry_delay = 0.05
        self.commands: dict[tuple, list] = {}
        self._methods = {
            name[4:].lower(): getattr(self, name) for name in dir(self) if name.startswith("api_")
        }
        self._chats: dict[int, ChatState] = {}
        self._users: dict[int, dict] = {}
        self._messages: dict[tuple[int, int], dict] = {}
        self._outbox: list[dict] = []
        self._files_meta: dict[str, dict] = {}
        self._file_data: dict[str, tuple[bytes, str]] = {}
        self._init_files()
        self._pending: list[dict] = []
        self._history: list[dict] = []
        self._next_update_id = 100_000_001
        self._allowed_updates: list[str] | None = None
        self._poll_generation = 0
        self.waiting_polls = 0  # getUpdates requests currently long-polling
        self._calls: list[Call] = []
        self._drafts: list[dict] = []
        self._chat_actions: list[dict] = []
        self._callback_queries: dict[str, dict | None] = {}
        self._blocked: set[int] = set()
        self._bot_members: dict[int, dict] = {}  # chat_id -> the bot's ChatMember there
        # (chat_id, user_id) -> a person's status in a group; set by set_member or by
        # writing there. Anyone else has "left".
        self._members: dict[tuple[int, int], str] = {}
        self._faults: dict[str, list[_Fault]] = {}
        self._delays: dict[str, float] = {}
        self._changed_event = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._webhook_task: asyncio.Task | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """For ``Bot(token, base_url=...)``: python-telegram-bot appends the token."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    @property
    def api_url(self) -> str:
        """The full per-token prefix, for raw HTTP clients: ``{api_url}/getMe``."""
        return f"{self.url}/bot{self.token}"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.*}", self._handle_file)
        app.router.add_get("/_control/{what}", self._handle_control_get)
        app.router.add_post("/_control/{what}", self._handle_control_post)
        return app

    async def start(self) -> FakeTelegram:
        self._changed_event = asyncio.Event()
        self._runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self.webhook.get("url") and self._webhook_task is None:
            self._webhook_task = asyncio.create_task(self._webhook_worker())
        return self

    async def stop(self) -> None:
        self._stop_webhook_delivery()
        self._poll_generation += 1
        self._changed()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ faults & blocking

    def fail_next(
        self,
        method: str,
        status: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        count: int = 1,
    ) -> None:
        """Make the next `count` calls of `method` fail; status 0 drops the connection."""
        fault = _Fault(status, description, retry_after, count)
        self._faults.setdefault(method.lower(), []).append(fault)

    def fail_when(
        self,
        predicate: Callable[[str, dict], bool],
        status: int = 500,
        description: str | None = None,
        retry_after: int | None = None,
        count: int | None = None,
    ) -> Callable[[], None]:
        """Fail calls for which predicate(method, params) is true; returns a remover."""
        fault = _Fault(status, description, retry_after, count, predicate)
        self._faults.setdefault("*", []).append(fault)
        return lambda: self._faults["*"].remove(fault) if fault in self._faults["*"] else None

    def set_delay(self, method: str, seconds: float) -> None:
        """Answer `method` only after `seconds`, e.g. to trigger client timeouts."""
        self._delays[method.lower()] = seconds

    def block(self, chat_id: int) -> None:
        """The user blocked the bot (or, for a group, the bot was removed)."""
        self._blocked.add(int(chat_id))

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(int(chat_id))

    def _take_fault(self, method: str, params: dict) -> _Fault | None:
        for fault in self._faults.get(method.lower(), []):
            fault.count -= 1
            if fault.count <= 0:
                self._faults[method.lower()].remove(fault)
            return fault
        for fault in list(self._faults.get("*", [])):
            if fault.predicate(method, params):
                if fault.count is not None:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults["*"].remove(fault)
                return fault
        return None

    def _check_target(self, method: str, params: dict) -> None:
        lower = method.lower()
        if not lower.startswith(_TARGETED_PREFIXES) or params.get("chat_id") in (None, ""):
            return
        chat = self._chat(params["chat_id"])
        if chat.id in self._blocked:
            if chat.type == "private":
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
        if self.enforce_limits and lower in _FLOOD_LIMITED:
            retry_after = self.limits.check(chat.id, chat.type == "private")
            if retry_after is not None:
                raise too_many_requests(retry_after)

    # ------------------------------------------------------------------ state helpers

    def _chat(self, chat_id: Any, kind: str | None = None) -> ChatState:
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if isinstance(chat_id, str) and not chat_id.lstrip("-").isdigit():
            for chat in self._chats.values():
                if chat.username and f"@{chat.username}" == chat_id:
                    return chat
            raise ApiError(400, "Bad Request: chat not found")
        cid = int(chat_id)
        chat = self._chats.get(cid)
        if chat is None:
            kind = kind or ("private" if cid > 0 else "supergroup")
            chat = ChatState(cid, kind, next_message_id=1 if kind == "private" else 2)
            if kind == "private":
                chat.first_name = f"Customer{cid}"
            else:
                chat.title = f"Group {cid}"
            self._chats[cid] = chat
        return chat

    def _make_message(
        self,
        chat: ChatState,
        sender: dict,
        content: dict,
        *,
        thread_id: int | None = None,
        reply_to: dict | None = None,
    ) -> dict:
        message: dict[str, Any] = {
            "message_id": chat.take_message_id(),
            "from": dict(sender),
            "date": int(time.time()),
            "chat": chat.to_dict(),
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            if chat.is_forum:
                message["is_topic_message"] = True
                if reply_to is None:
                    # In a topic, Telegram points at the topic's creation message.
                    reply_to = self._messages.get((chat.id, thread_id))
        if reply_to is not None:
            quoted = self._public(reply_to)
            quoted.pop("reply_to_message", None)
            message["reply_to_message"] = quoted
        message.update(snapshot(content))
        return message

    def _store(self, message: dict, outgoing: bool) -> None:
        self._messages[(message["chat"]["id"], message["message_id"])] = message
        if outgoing:
            self._outbox.append(message)

    @staticmethod
    def _public(message: dict) -> dict:
        return {k: snapshot(v) for k, v in message.items() if not k.startswith("_")}

    def _allowed(self, update: dict) -> bool:
        if not self._allowed_updates:
            return True
        return any(key in self._allowed_updates for key in update if key != "update_id")

    def _changed(self) -> None:
        """Wake everyone waiting for the state to change (long polls, wait_for)."""
        self._changed_event.set()
        self._changed_event = asyncio.Event()

    def add_file(
        self,
        data: bytes,
        *,
        kind: str = "document",
        file_id: str | None = None,
        file_name: str | None = None,
        mime_type: str | None = None,
    ) -> dict:
        """Store a file the bot can getFile and download; returns its Bot API object."""
        number = next(_file_ids)
        file_id = file_id or f"AgAC{kind[:3]}{number:08d}"
        meta: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": f"AQAD{number:08d}",
            "file_size": len(data),
        }
        if kind in ("photo", "video", "animation", "sticker"):
            meta.update(width=512, height=512)
        if kind in ("voice", "audio", "video", "animation", "video_note"):
            meta["duration"] = 1
        if kind == "video_note":
            meta["length"] = 240
        if kind == "sticker":
            meta.update(type="regular", is_animated=False, is_video=False)
        if file_name and kind in ("document", "audio", "video", "animation"):
            meta["file_name"] = file_name
        if mime_type and kind in ("document", "audio", "video", "animation", "voice"):
            meta["mime_type"] = mime_type
        self._files_meta[file_id] = meta
        self._file_data[file_id] = (data, kind)
        return dict(meta)

    def _file_path(self, file_id: str) -> str:
        kind = self._file_data.get(file_id, (b"", "document"))[1]
        return f"{kind}s/{self._files_meta[file_id]['file_unique_id']}"

    # ------------------------------------------------------------------ HTTP

    async def _parse(self, request: web.Request) -> tuple[Params, Files]:
        raw: dict[str, Any] = dict(request.query)
        files: Files = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    for key, value in body.items():
                        raw[key] = json.dumps(value) if isinstance(value, (dict, list)) else value
            else:
                form = await request.post()
                for key, value in form.items():
                    if isinstance(value, web.FileField):
                        files[key] = (value.file.read(), value.filename, value.content_type)
                    else:
                        raw[key] = value
        return {k: _decode(k, v) for k, v in raw.items()}, files

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        method = self._methods.get(request.match_info["method"].lower())
        if method is None:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        params, files = await self._parse(request)
        name = method.__name__[4:]
        call = Call(name, params, files={k: v[0] for k, v in files.items()})
        try:
            if self._delays.get(name.lower()):
                await asyncio.sleep(self._delays[name.lower()])
            fault = self._take_fault(name, params)
            if fault is not None and fault.status == 0:
                call.status, call.error = 0, "connection dropped"
                self._record(call)
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)  # never reaches the closed socket
            if fault is not None:
                raise fault.error()
            self._check_target(name, params)
            result = await method(params, files)
        except ApiError as exc:
            if exc.status == 429:
                self.too_many_requests += 1
            call.status, call.error = exc.status, exc.description
            self._record(call)
            return web.json_response(exc.body(), status=exc.status)
        call.result = snapshot(result)
        self._record(call)
        return web.json_response({"ok": True, "result": result})

    def _record(self, call: Call) -> None:
        self._calls.append(call)
        self._changed()


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeTelegram(
        args.token,
        username=args.username,
        enforce_limits=args.enforce_limits,
        host=args.host,
        port=args.port,
    )
    await serve_until_signalled(fake, "url", "base_url", "token")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake Telegram Bot API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--username", default="shop_support_bot")
    parser.add_argument("--enforce-limits", action="store_true")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
