"""Forgetting a customer on request, and forgetting everyone's old message text on schedule.

Both keep ticket metadata (ids, status, reason, times, ratings): support
statistics and audits need them, and they say nothing about what was written.
What goes is the text: messages, model requests kept for audit, feedback,
stored Telegram updates, ticket summaries, and the file ids and transcripts of
photos, voice notes and files.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store.db import Database

log = logging.getLogger(__name__)

DAY_SECONDS = 24 * 60 * 60


@dataclass(frozen=True)
class Forgotten:
    messages: int
    feedback: int
    updates: int
    tickets: int


def _chat_keys(chat_id: int) -> tuple[str, str]:
    """The inbox's chat keys for a chat: the chat itself and any of its topics."""
    return str(chat_id), f"{chat_id}:%"


async def forget_chat(db: Database, chat_id: int, keep_update_id: int | None = None) -> Forgotten:
    """Delete what a customer wrote and was answered in ``chat_id``, in one transaction.

    Updates still waiting to be handled stay (they arrived after the request and
    the customer expects answers to them), except ``keep_update_id``'s own row,
    which is the /forget confirmation itself and is removed too.
    Close the customer's open ticket before calling this: a closed ticket's
    summary is blanked here as well.
    """
    exact, topics = _chat_keys(chat_id)
    async with db.transaction() as conn:
        await conn.execute(
            "DELETE FROM answers WHERE message_id IN (SELECT id FROM messages WHERE chat_id = ?)",
            (chat_id,),
        )
        await conn.execute("DELETE FROM attachments WHERE chat_id = ?", (chat_id,))
        feedback = await conn.execute(
            "DELETE FROM feedback WHERE chat_id = ? OR message_id IN "
            "(SELECT id FROM messages WHERE chat_id = ?)",
            (chat_id, chat_id),
        )
        messages = await conn.execute("DELETE FROM messages WHERE chat_id = ?", (chat_id,))
        await conn.execute("DELETE FROM relayed_messages WHERE customer_chat_id = ?", (chat_id,))
        updates = await conn.execute(
            "DELETE FROM inbox WHERE (chat_key = ? OR chat_key LIKE ?) "
            "AND (status != 'pending' OR update_id = ?)",
            (exact, topics, keep_update_id if keep_update_id is not None else -1),
        )
        tickets = await conn.execute(
            "UPDATE tickets SET summary = NULL WHERE chat_id = ? AND status = 'resolved'",
            (chat_id,),
        )
        await conn.execute(
            "UPDATE ticket_events SET detail = NULL WHERE event IN ('escalated', 'note') "
            "AND ticket_id IN (SELECT id FROM tickets WHERE chat_id = ? AND status = 'resolved')",
            (chat_id,),
        )
        await conn.execute(
            "UPDATE customers SET first_name = NULL, last_name = NULL, username = NULL, "
            "language = NULL WHERE chat_id = ?",
            (chat_id,),
        )
    result = Forgotten(messages.rowcount, feedback.rowcount, updates.rowcount, tickets.rowcount)
    log.info(
        "forgot chat %s: %d messages, %d feedback, %d stored updates, %d ticket summaries",
        chat_id,
        result.messages,
        result.feedback,
        result.updates,
        result.tickets,
    )
    return result


async def purge_older_than(db: Database, days: int, now: datetime | None = None) -> int:
    """Blank message text older than ``days``; returns how many messages lost their text."""
    if days <= 0:
        return 0
    cutoff = ((now or datetime.now(UTC)) - timedelta(days=days)).isoformat(timespec="milliseconds")
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE messages SET text = NULL WHERE created_at < ? AND text IS NOT NULL", (cutoff,)
        )
        purged = cursor.rowcount
        await conn.execute("DELETE FROM attachments WHERE created_at < ?", (cutoff,))
        await conn.execute(
            "UPDATE answers SET request_json = NULL WHERE request_json IS NOT NULL AND "
            "message_id IN (SELECT id FROM messages WHERE created_at < ?)",
            (cutoff,),
        )
        await conn.execute(
            "DELETE FROM inbox WHERE status != 'pending' AND received_at < ?", (cutoff,)
        )
        await conn.execute(
            "UPDATE tickets SET summary = NULL WHERE status = 'resolved' AND summary IS NOT NULL "
            "AND resolved_at < ?",
            (cutoff,),
        )
        await conn.execute(
            "UPDATE ticket_events SET detail = NULL WHERE event IN ('escalated', 'note') "
            "AND detail IS NOT NULL AND created_at < ? AND ticket_id IN "
            "(SELECT id FROM tickets WHERE status = 'resolved')",
            (cutoff,),
        )
    if purged:
        log.info("retention: removed the text of %d message(s) older than %d days", purged, days)
    return purged


async def retention_loop(db: Database, days: int, every: float = DAY_SECONDS) -> None:
    """Purge once at start, then daily; a failed run is logged and tried the next day."""
    while True:
        try:
            await purge_older_than(db, days)
        except Exception:
            log.exception("retention purge failed; trying again in %.0f s", every)
        await asyncio.sleep(every)
