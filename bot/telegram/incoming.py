"""A customer's update read into the core's terms: who wrote (``Customer``) and what
(``Incoming``), with no Telegram type left in them, so the core never sees one.
"""

from __future__ import annotations

from telegram import Message, Update

from bot.knowledge.persona import Persona
from bot.outcome import Incoming
from bot.store.conversations import Customer
from bot.telegram.groups import without_mention
from bot.telegram.media import attachments_of


def customer_of(update: Update) -> Customer:
    chat = update.effective_chat
    user = update.effective_user
    return Customer(
        chat_id=chat.id if chat else (user.id if user else 0),
        user_id=user.id if user else None,
        first_name=(user.first_name if user else "") or "",
        last_name=(user.last_name if user else "") or "",
        username=(user.username if user else "") or "",
        language=(user.language_code if user else "") or "",
    )


def message_kind(message: Message) -> str:
    """What the customer sent, named the way tickets and transcripts show it."""
    if message.text is not None:
        return "text"
    for kind in (
        "photo",
        "sticker",
        "voice",
        "video",
        "video_note",
        "animation",
        "audio",
        "document",
        "location",
        "venue",
        "contact",
        "poll",
        "dice",
    ):
        if getattr(message, kind, None):
            return kind
    return "other"


def incoming_message(update: Update, bot_username: str | None) -> Incoming:
    """A new message; in a group, without the mention that addressed it to the bot."""
    msg = update.effective_message
    text = msg.text if msg.text is not None else msg.caption
    if msg.chat.type != "private":
        text = without_mention(text, bot_username)
    return Incoming(
        customer=customer_of(update),
        text=text,
        kind=message_kind(msg),
        message_id=msg.message_id,
        attachments=attachments_of(msg),
    )


def incoming_edit(update: Update, persona: Persona) -> Incoming:
    """An edited message, worded for staff as an edit, should it be relayed to them."""
    msg = update.edited_message
    return Incoming(
        customer_of(update),
        persona.staff_message("edited_message", text=msg.text or msg.caption or ""),
        "text",
        msg.message_id,
        edited=True,
    )
