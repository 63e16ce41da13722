"""Bot API methods about chats, forum topics, callback queries and the bot's commands.

Split from telegram_methods (messages and updates) only to keep both files readable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.fakes.telegram_methods import Files, Params, int_param
from tests.fakes.telegram_state import ApiError, ChatState, Topic, bad_request, snapshot

if TYPE_CHECKING:
    from tests.fakes.telegram_api import FakeTelegram


class ChatMethods:
    """Mixin holding chat-level method implementations; see FakeTelegram for the state."""

    # ------------------------------------------------------------------ chats & topics

    async def api_getChat(self: FakeTelegram, p: Params, files: Files) -> Any:
        chat = self._chat(p.get("chat_id"))
        status = self._bot_members.get(chat.id, {}).get("status")
        if status == "left":
            raise bad_request("chat not found")
        if status == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat.type} chat")
        info = chat.to_dict()
        info.update(
            {
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False,
                    "limited_gifts": False,
                    "unique_gifts": False,
                    "premium_subscription": False,
                    "gifts_from_channels": False,
                },
            }
        )
        return info

    def _forum(self: FakeTelegram, p: Params) -> ChatState:
        chat = self._chat(p.get("chat_id"))
        if not chat.is_forum:
            raise bad_request("the chat is not a forum")
        return chat

    def _topic(self: FakeTelegram, p: Params) -> tuple[ChatState, Topic]:
        chat = self._forum(p)
        topic = chat.topics.get(int_param(p, "message_thread_id"))
        if topic is None:
            raise bad_request("TOPIC_ID_INVALID")
        return chat, topic

    async def api_createForumTopic(self: FakeTelegram, p: Params, files: Files) -> Any:
        chat = self._forum(p)
        name = p.get("name") or ""
        if not 1 <= len(name) <= 128:
            raise bad_request("invalid forum topic name specified" if name else "name is empty")
        topic = self._open_topic(chat, name, creator=self.bot_user)
        if p.get("icon_color") is not None:
            topic.icon_color = int(p["icon_color"])
        topic.icon_custom_emoji_id = p.get("icon_custom_emoji_id") or None
        return topic.to_dict()

    async def api_editForumTopic(self: FakeTelegram, p: Params, files: Files) -> Any:
        _, topic = self._topic(p)
        name = p.get("name")
        emoji = p.get("icon_custom_emoji_id")
        if (name is None or name == topic.name) and (
            emoji is None or emoji == topic.icon_custom_emoji_id
        ):
            raise bad_request("TOPIC_NOT_MODIFIED")
        if name is not None:
            topic.name = name
        if emoji is not None:
            topic.icon_custom_emoji_id = emoji or None
        return True

    async def api_closeForumTopic(self: FakeTelegram, p: Params, files: Files) -> Any:
        _, topic = self._topic(p)
        if topic.closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = True
        return True

    async def api_reopenForumTopic(self: FakeTelegram, p: Params, files: Files) -> Any:
        _, topic = self._topic(p)
        if not topic.closed:
            raise bad_request("TOPIC_NOT_MODIFIED")
        topic.closed = False
        return True

    async def api_deleteForumTopic(self: FakeTelegram, p: Params, files: Files) -> Any:
        chat, topic = self._topic(p)
        del chat.topics[topic.thread_id]
        return True

    # ------------------------------------------------------------------ misc

    async def api_answerCallbackQuery(self: FakeTelegram, p: Params, files: Files) -> Any:
        query_id = p.get("callback_query_id")
        if query_id not in self._callback_queries or self._callback_queries[query_id] is not None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        self._callback_queries[query_id] = {
            "text": p.get("text"),
            "show_alert": bool(p.get("show_alert")),
            "url": p.get("url"),
        }
        return True

    async def api_setMyCommands(self: FakeTelegram, p: Params, files: Files) -> Any:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            name = str(command.get("command", ""))
            if (
                not name
                or len(name) > 32
                or not name.replace("_", "").isalnum()
                or name.lower() != name
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request(
                    "command description is empty"
                    if not command.get("description")
                    else "BOT_COMMAND_INVALID"
                )
        key = (
            snapshot(p.get("scope") or {"type": "default"}).get("type"),
            p.get("language_code") or "",
        )
        self.commands[key] = commands
        return True

    async def api_getMyCommands(self: FakeTelegram, p: Params, files: Files) -> Any:
        key = ((p.get("scope") or {"type": "default"}).get("type"), p.get("language_code") or "")
        return self.commands.get(key, [])

    async def api_deleteMyCommands(self: FakeTelegram, p: Params, files: Files) -> Any:
        key = ((p.get("scope") or {"type": "default"}).get("type"), p.get("language_code") or "")
        self.commands.pop(key, None)
        return True

    async def api_setMyDescription(self: FakeTelegram, p: Params, files: Files) -> Any:
        return True

    async def api_setMyShortDescription(self: FakeTelegram, p: Params, files: Files) -> Any:
        return True

    async def api_setChatMenuButton(self: FakeTelegram, p: Params, files: Files) -> Any:
        return True

    async def api_getChatMember(self: FakeTelegram, p: Params, files: Files) -> Any:
        user_id = int_param(p, "user_id")
        if user_id == self.bot_user["id"]:
            chat = self._chat(p.get("chat_id"))
            member = self._bot_members.get(chat.id) or {"status": "administrator"}
            if member["status"] == "administrator":
                return {**_ADMIN_RIGHTS, **member, "user": dict(self.bot_user)}
            if member["status"] == "restricted":
                return {**_RESTRICTED, **member, "user": dict(self.bot_user)}
            extra = {"until_date": 0} if member["status"] == "kicked" else {}
            return {**member, **extra, "user": dict(self.bot_user)}
        user = self._users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": "Member"}
        status = self._members.get((self._chat(p.get("chat_id")).id, user_id), "left")
        extra = {"until_date": 0} if status == "kicked" else {}
        if status == "administrator":
            extra = {**_ADMIN_RIGHTS, "can_be_edited": False}
        elif status == "creator":
            extra = {"is_anonymous": False}
        return {"status": status, **extra, "user": dict(user)}

    def set_member(self: FakeTelegram, chat_id: int, user_id: int, status: str = "member") -> None:
        """A person's standing in a group: "creator", "administrator", "member", "left", "kicked"."""
        self._members[(self._chat(chat_id).id, user_id)] = status

    def set_bot_member(
        self: FakeTelegram, chat_id: int, status: str = "administrator", **rights: bool
    ) -> None:
        """How the bot stands in a chat: "administrator" (with rights such as
        can_manage_topics=False), "member", "restricted", "left" or "kicked"."""
        if status not in ("administrator", "member", "restricted", "left", "kicked"):
            raise ValueError(f"not a chat member status: {status}")
        self._bot_members[self._chat(chat_id).id] = {"status": status, **rights}


# ChatMemberAdministrator as Telegram returns it for a bot promoted with every group right.
_ADMIN_RIGHTS: dict[str, Any] = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
    "can_pin_messages": True,
    "can_manage_topics": True,
}

# ChatMemberRestricted: still in the chat, each permission spelled out.
_RESTRICTED: dict[str, Any] = {
    "is_member": True,
    "until_date": 0,
    "can_send_messages": False,
    "can_send_audios": False,
    "can_send_documents": False,
    "can_send_photos": False,
    "can_send_videos": False,
    "can_send_video_notes": False,
    "can_send_voice_notes": False,
    "can_send_polls": False,
    "can_send_other_messages": False,
    "can_add_web_page_previews": False,
    "can_change_info": False,
    "can_invite_users": False,
    "can_pin_messages": False,
    "can_manage_topics": False,
    "can_edit_tag": False,
    "can_react_to_messages": False,
}
