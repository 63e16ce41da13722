"""Plain data the Bot API double keeps: users, chats, recorded calls and flood limits."""

from __future__ import annotations

import json
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


class ApiError(Exception):
    """A Bot API failure, rendered as {"ok": false, "error_code", "description"}."""

    def __init__(self, status: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


def too_many_requests(retry_after: int) -> ApiError:
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


@dataclass(frozen=True)
class TgUser:
    """A human Telegram account that talks to the bot."""

    id: int
    first_name: str = "Customer"
    username: str | None = None
    language_code: str | None = "en"
    last_name: str | None = None

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        data["is_bot"] = False
        return data


UserLike = TgUser | dict | int | None


def user_dict(user: UserLike, default_id: int) -> dict:
    """Accept the loose forms tests like to write and produce a Bot API User object."""
    if user is None:
        return TgUser(id=default_id, first_name=f"Customer{default_id}").to_dict()
    if isinstance(user, int):
        return TgUser(id=user, first_name=f"Customer{user}").to_dict()
    if isinstance(user, TgUser):
        return user.to_dict()
    data = dict(user)
    data.setdefault("first_name", f"Customer{data['id']}")
    data.setdefault("is_bot", False)
    return data


@dataclass
class Topic:
    thread_id: int
    name: str
    icon_color: int = 7322096
    icon_custom_emoji_id: str | None = None
    closed: bool = False

    def to_dict(self) -> dict:
        data = {
            "message_thread_id": self.thread_id,
            "name": self.name,
            "icon_color": self.icon_color,
        }
        if self.icon_custom_emoji_id:
            data["icon_custom_emoji_id"] = self.icon_custom_emoji_id
        return data


@dataclass
class ChatState:
    id: int
    type: str
    title: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    username: str | None = None
    is_forum: bool = False
    next_message_id: int = 1
    topics: dict[int, Topic] = field(default_factory=dict)

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"id": self.id, "type": self.type}
        for key in ("title", "first_name", "last_name", "username"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.is_forum:
            data["is_forum"] = True
        return data

    def take_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


@dataclass
class Call:
    """One Bot API request as the bot made it and what the double answered."""

    method: str
    params: dict
    result: Any = None
    status: int = 200
    error: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return self.status == 200

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "params": self.params,
            "result": self.result,
            "status": self.status,
            "error": self.error,
            "files": {k: len(v) for k, v in self.files.items()},
            "at": self.at,
        }


def snapshot(value: Any) -> Any:
    """A deep copy, so later edits of a stored message do not rewrite recorded history."""
    return json.loads(json.dumps(value))


class FloodLimits:
    """Telegram's documented flood limits, so a bot's own throttling can be tested.

    Private chats get a token bucket (about one message a second with a small burst),
    groups a sliding minute window, and the bot as a whole a sliding one-second window.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        private_rate: float = 1.0,
        private_burst: int = 3,
        group_per_minute: int = 20,
        global_per_second: int = 30,
    ):
        self.clock = clock
        self.private_rate = private_rate
        self.private_burst = private_burst
        self.group_per_minute = group_per_minute
        self.global_per_second = global_per_second
        self._buckets: dict[int, tuple[float, float]] = {}
        self._groups: dict[int, deque[float]] = {}
        self._global: deque[float] = deque()

    def check(self, chat_id: int, private: bool) -> int | None:
        """Consume one message from every applicable budget, or return retry_after."""
        now = self.clock()
        waits = []
        while self._global and now - self._global[0] >= 1.0:
            self._global.popleft()
        if len(self._global) >= self.global_per_second:
            waits.append(1.0 - (now - self._global[0]))
        if private:
            tokens, last = self._buckets.get(chat_id, (float(self.private_burst), now))
            tokens = min(float(self.private_burst), tokens + (now - last) * self.private_rate)
            if tokens < 1.0:
                waits.append((1.0 - tokens) / self.private_rate)
        else:
            window = self._groups.setdefault(chat_id, deque())
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) >= self.group_per_minute:
                waits.append(60.0 - (now - window[0]))
        if waits:
            return max(1, math.ceil(max(waits)))
        self._global.append(now)
        if private:
            self._buckets[chat_id] = (tokens - 1.0, now)
        else:
            self._groups[chat_id].append(now)
        return None
