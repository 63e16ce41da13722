"""Things customers and staff do, turned into Bot API updates for the bot to receive.

Every helper returns the update_id. Messages are stored, so the bot can reply to, copy or
forward them later exactly as it could on the real server.
"""

from __future__ import annotations

import itertools
import re
import time
from typing import TYPE_CHECKING, Any

from tests.fakes.telegram_markup import utf16_len
from tests.fakes.telegram_state import ChatState, UserLike, snapshot, user_dict

if TYPE_CHECKING:
    from tests.fakes.telegram_api import FakeTelegram

_query_ids = itertools.count(4_000_000_001)


class UpdateInjection:
    """Mixin: build updates from the point of view of people using Telegram."""

    # ------------------------------------------------------------------ chats

    def add_group(self: FakeTelegram, chat_id: int, title: str = "Staff") -> None:
        """Register a plain supergroup."""
        chat = self._chat(chat_id, kind="supergroup")
        chat.type, chat.title = "supergroup", title

    def add_forum_group(self: FakeTelegram, chat_id: int, title: str = "Support desk") -> None:
        """Register a supergroup with topics enabled, where createForumTopic works."""
        chat = self._chat(chat_id, kind="supergroup")
        chat.type, chat.title, chat.is_forum = "supergroup", title, True

    def add_topic(self: FakeTelegram, chat_id: int, name: str, creator: UserLike = None) -> int:
        """Open a topic as a group member would; returns its message_thread_id."""
        chat = self._chat(chat_id)
        chat.is_forum = True
        return self._open_topic(chat, name, creator=user_dict(creator, 1)).thread_id

    def _open_topic(self: FakeTelegram, chat: ChatState, name: str, creator: dict):
        from tests.fakes.telegram_state import Topic

        content = {"forum_topic_created": {"name": name, "icon_color": 7322096}}
        service = self._make_message(chat, creator, content)
        service["message_thread_id"] = service["message_id"]
        service["is_topic_message"] = True
        self._store(service, outgoing=False)
        topic = Topic(thread_id=service["message_id"], name=name)
        chat.topics[topic.thread_id] = topic
        return topic

    # ------------------------------------------------------------------ updates

    def push_update(self: FakeTelegram, update: dict) -> int:
        """Queue a raw update (an update_id is assigned when missing)."""
        update = dict(update)
        if "update_id" not in update:
            update["update_id"] = self._next_update_id
        self._next_update_id = max(self._next_update_id, update["update_id"]) + 1
        self._history.append(update)
        self._pending.append(update)
        self._changed()
        return update["update_id"]

    def user_message(
        self: FakeTelegram,
        chat_id: int,
        user: UserLike = None,
        *,
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
        **content: Any,
    ) -> int:
        """A private-chat message with arbitrary content fields (text, photo, contact...)."""
        sender = user_dict(user, chat_id)
        chat = self._chat(chat_id, kind="private")
        if chat.type == "private":
            chat.first_name = sender.get("first_name")
            chat.last_name = sender.get("last_name")
            chat.username = sender.get("username")
        return self._inbound(chat, sender, content, reply_to_message_id, message_thread_id)

    def group_message(
        self: FakeTelegram,
        chat_id: int,
        user: UserLike,
        *,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        is_forum: bool = False,
        **content: Any,
    ) -> int:
        """A message in a group, optionally in a forum topic or replying to a message."""
        chat = self._chat(chat_id, kind="supergroup")
        if is_forum:
            chat.is_forum = True
        sender = user_dict(user, 1)
        self._members.setdefault((chat.id, sender["id"]), "member")
        return self._inbound(chat, sender, content, reply_to_message_id, message_thread_id)

    def _inbound(
        self: FakeTelegram,
        chat: ChatState,
        sender: dict,
        content: dict,
        reply_to_message_id: int | None,
        message_thread_id: int | None,
    ) -> int:
        self._users[sender["id"]] = sender
        reply = None
        if reply_to_message_id is not None:
            reply = self._messages.get((chat.id, reply_to_message_id))
            if reply is None:
                reply = {
                    "message_id": reply_to_message_id,
                    "date": int(time.time()),
                    "chat": chat.to_dict(),
                    "from": dict(self.bot_user),
                    "text": "",
                }
            if message_thread_id is None and chat.is_forum:
                message_thread_id = reply.get("message_thread_id")
        if chat.is_forum and message_thread_id is not None and message_thread_id not in chat.topics:
            from tests.fakes.telegram_state import Topic

            chat.topics[message_thread_id] = Topic(message_thread_id, f"Topic {message_thread_id}")
        for kind in ("photo", "document", "voice", "audio", "video", "sticker"):
            if kind in content:
                self._remember_inbound_file(content[kind])
        message = self._make_message(
            chat, sender, content, thread_id=message_thread_id, reply_to=reply
        )
        self._store(message, outgoing=False)
        return self.push_update({"message": self._public(message)})

    def _remember_inbound_file(self: FakeTelegram, value: Any) -> None:
        for meta in value if isinstance(value, list) else [value]:
            if isinstance(meta, dict) and meta.get("file_id") not in self._files_meta:
                self._files_meta[meta["file_id"]] = meta
                self._file_data[meta["file_id"]] = (b"\x00" * meta.get("file_size", 0), "documents")

    def user_text(
        self: FakeTelegram, chat_id: int, text: str, user: UserLike = None, **kw: Any
    ) -> int:
        """A customer typing in their private chat with the bot (chat_id == user id by default)."""
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self.user_message(chat_id, user, **content, **kw)

    def group_text(
        self: FakeTelegram,
        chat_id: int,
        text: str,
        user: UserLike,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        is_forum: bool = False,
    ) -> int:
        content: dict[str, Any] = {"text": text}
        entities = []
        if text.startswith("/"):
            command = text.split()[0]
            entities.append({"type": "bot_command", "offset": 0, "length": len(command)})
        # Telegram marks @username mentions as entities (offsets in UTF-16 units).
        for found in re.finditer(r"@[A-Za-z]\w{4,31}", text):
            offset = utf16_len(text[: found.start()])
            entities.append({"type": "mention", "offset": offset, "length": utf16_len(found[0])})
        if entities:
            content["entities"] = entities
        return self.group_message(
            chat_id,
            user,
            message_thread_id=message_thread_id,
            reply_to_message_id=reply_to_message_id,
            is_forum=is_forum,
            **content,
        )

    def user_sticker(
        self: FakeTelegram, chat_id: int, user: UserLike = None, emoji: str = "👍"
    ) -> int:
        meta = self.add_file(b"RIFFwebp", kind="sticker")
        meta["emoji"] = emoji
        return self.user_message(chat_id, user, sticker=meta)

    def user_location(
        self: FakeTelegram, chat_id: int, latitude: float, longitude: float, user: UserLike = None
    ) -> int:
        return self.user_message(
            chat_id, user, location={"latitude": latitude, "longitude": longitude}
        )

    def user_contact(
        self: FakeTelegram,
        chat_id: int,
        phone_number: str,
        first_name: str = "Customer",
        user: UserLike = None,
    ) -> int:
        sender = user_dict(user, chat_id)
        contact = {"phone_number": phone_number, "first_name": first_name, "user_id": sender["id"]}
        return self.user_message(chat_id, sender, contact=contact)

    def edited_text(
        self: FakeTelegram, chat_id: int, message_id: int, text: str, user: UserLike = None
    ) -> int:
        """The customer edits a message they sent earlier."""
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        message["text"] = text
        message.pop("entities", None)
        message["edit_date"] = int(time.time())
        if user is not None:
            message["from"] = user_dict(user, chat_id)
        return self.push_update({"edited_message": self._public(message)})

    def callback_query(
        self: FakeTelegram, chat_id: int, user: UserLike, data: str, message_id: int
    ) -> int:
        """A press on an inline keyboard button of message_id; answers are recorded."""
        message = self._messages.get((chat_id, message_id))
        if message is None:
            chat = self._chat(chat_id)
            message = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": chat.to_dict(),
                "from": dict(self.bot_user),
                "text": "",
            }
        query_id = str(next(_query_ids))
        self._callback_queries[query_id] = None
        query = {
            "id": query_id,
            "from": user_dict(user, chat_id),
            "chat_instance": str(abs(chat_id) * 7 + 3),
            "data": data,
            "message": self._public(message),
        }
        return self.push_update({"callback_query": query})

    def callback_answer(self, update_id: int) -> dict | None:
        """What the bot answered to the callback query carried by update_id, if anything."""
        for call in self.calls("answerCallbackQuery"):
            if call.ok and call.params.get("callback_query_id") == self._query_of(update_id):
                return snapshot(call.params)
        return None

    def _query_of(self: FakeTelegram, update_id: int) -> str | None:
        for update in self._history:
            if update["update_id"] == update_id and "callback_query" in update:
                return update["callback_query"]["id"]
        return None
