"""Attachments of customer messages: Telegram file ids, what they were, and any transcript.

Rows are written in the same transaction as their message, so a photo is never
stored without its message or the other way round; they go with the message
on /forget and with their age under retention (``bot.privacy``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiosqlite

from bot.store.db import Database

if TYPE_CHECKING:
    from bot.media import Attachment

_INSERT = (
    "INSERT INTO attachments (message_id, chat_id, kind, file_id, file_unique_id, mime, size, "
    "duration, file_name, transcript, outcome, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment of the current conversation, with the message it came in."""

    kind: str
    file_id: str
    telegram_message_id: int | None
    transcript: str | None
    outcome: str | None


async def insert_attachments(
    conn: aiosqlite.Connection,
    message_id: int,
    chat_id: int,
    attachments: Sequence[Attachment],
    now: str,
) -> None:
    """Inside the message's own write (``ConversationStore``). A photo is stored by the
    file id of its largest size, which the adapter puts in ``file_id``."""
    await conn.executemany(
        _INSERT,
        [
            (
                message_id,
                chat_id,
                a.kind,
                a.file_id,
                a.file_unique_id,
                a.mime,
                a.size,
                a.duration,
                a.file_name,
                a.transcript,
                a.outcome,
                now,
            )
            for a in attachments
        ],
    )


async def conversation_attachments(
    db: Database, chat_id: int, limit: int = 10
) -> list[StoredAttachment]:
    """The newest attachments of the chat's open conversation, oldest first."""
    rows = await db.fetchall(
        "SELECT a.kind, a.file_id, m.telegram_message_id, a.transcript, a.outcome "
        "FROM attachments a JOIN messages m ON m.id = a.message_id "
        "JOIN conversations c ON c.id = m.conversation_id "
        "WHERE a.chat_id = ? AND c.ended_at IS NULL ORDER BY a.id DESC LIMIT ?",
        (chat_id, limit),
    )
    return [
        StoredAttachment(
            r["kind"], r["file_id"], r["telegram_message_id"], r["transcript"], r["outcome"]
        )
        for r in reversed(rows)
    ]
