"""Customers in group chats (``conversation.answer_in_groups``): answered only when addressed.

A group talks among itself; the bot joins in only when someone mentions it
(``@shop_support_bot``, or a mention of its account) or replies to one of its
messages, as Telegram's own group bots do. The mention is taken out of the
text before the core reads it, and the answer replies to the message it
answers, so the group sees who was answered.
"""

from __future__ import annotations

import re

from telegram import Message, MessageEntity
from telegram.ext import filters


def mentions_bot(message: Message) -> bool:
    """An @username mention of the bot, or a text mention of its account."""
    bot = message.get_bot()
    username = (bot.username or "").lower()
    entities = message.parse_entities() if message.text else message.parse_caption_entities()
    for entity, text in entities.items():
        if entity.type == MessageEntity.MENTION and username and text.lower() == f"@{username}":
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot.id:
            return True
    return False


def replies_to_bot(message: Message) -> bool:
    replied = message.reply_to_message
    if replied is None or replied.from_user is None:
        return False
    # A reply inside a forum topic points at the topic's first message when the
    # sender did not pick one; that is not talking to the bot.
    if message.is_topic_message and replied.forum_topic_created is not None:
        return False
    return replied.from_user.id == message.get_bot().id


class AddressedToBot(filters.MessageFilter):
    """Group messages that mention the bot or reply to it."""

    def filter(self, message: Message) -> bool:
        return mentions_bot(message) or replies_to_bot(message)


ADDRESSED_TO_BOT = AddressedToBot(name="AddressedToBot")


def without_mention(text: str | None, username: str | None) -> str | None:
    """The text without the bot's @username, so the core reads the question alone."""
    if not text or not username:
        return text
    stripped = re.sub(rf"(?i)@{re.escape(username)}\b[,:]?", " ", text)
    stripped = re.sub(r"\s+", " ", stripped).strip()
    return stripped or text


def group_filter(staff_chat_id: int | None) -> filters.BaseFilter:
    """New messages in groups other than the staff group that are addressed to the bot."""
    addressed = (
        filters.ChatType.GROUPS
        & filters.UpdateType.MESSAGE
        & ~filters.StatusUpdate.ALL
        & ~filters.COMMAND
        & ADDRESSED_TO_BOT
    )
    if staff_chat_id is not None:
        addressed = addressed & ~filters.Chat(staff_chat_id)
    return addressed
