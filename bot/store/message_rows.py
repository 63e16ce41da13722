"""The SQL a conversation's rows are written with, inside ``Database.write``.

Kept beside ``ConversationStore`` so that the store reads as what it does.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import aiosqlite

if TYPE_CHECKING:
    from bot.store.conversations import AnswerAudit, Customer

UPSERT_CUSTOMER = """
    INSERT INTO customers (chat_id, user_id, first_name, last_name, username, language,
                           created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT(chat_id) DO UPDATE SET
        user_id = excluded.user_id, first_name = excluded.first_name,
        last_name = excluded.last_name, username = excluded.username,
        language = excluded.language, updated_at = excluded.updated_at,
        blocked_at = NULL
"""

HISTORY = """
    SELECT m.id, m.role, m.kind, m.text, m.created_at FROM messages m
    JOIN conversations c ON c.id = m.conversation_id
    WHERE c.chat_id = ? AND c.ended_at IS NULL AND m.role IN ('customer', 'bot')
    ORDER BY m.id DESC LIMIT ?
"""

INSERT_MESSAGE = (
    "INSERT INTO messages (chat_id, role, kind, text, telegram_message_id, "
    "ticket_id, created_at, conversation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING RETURNING id"
)
INSERT_ANSWER = (
    "INSERT INTO answers (message_id, path, model, request_json, latency_ms, "
    "prompt_tokens, completion_tokens, faq_ids, faq_confidence, "
    "knowledge_version, escalation_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def insert_message(
    conn: aiosqlite.Connection, row: tuple[Any, ...], conversation_id: int
) -> tuple[int, bool]:
    """(id, True) for a new message; a customer's message stored before gives its own
    row back (False), joined to the ticket of ``row`` if it had none."""
    found = await conn.execute_fetchall(INSERT_MESSAGE, (*row, conversation_id))
    for (message_id,) in found:
        return int(message_id), True
    chat_id, _, _, _, telegram_message_id, ticket_id, _ = row
    existing = await conn.execute_fetchall(
        "SELECT id FROM messages WHERE chat_id = ? AND role = 'customer' "
        "AND telegram_message_id = ?",
        (chat_id, telegram_message_id),
    )
    message_id = int(next(iter(existing))[0])
    if ticket_id is not None:
        await conn.execute(
            "UPDATE messages SET ticket_id = ? WHERE id = ? AND ticket_id IS NULL",
            (ticket_id, message_id),
        )
    return message_id, False


def answer_row(audit: AnswerAudit) -> tuple[Any, ...]:
    return (
        audit.path,
        audit.model,
        json.dumps(audit.request, ensure_ascii=False) if audit.request else None,
        audit.latency_ms,
        audit.prompt_tokens,
        audit.completion_tokens,
        ",".join(audit.faq_ids),
        audit.faq_confidence,
        audit.knowledge_version,
        audit.escalation_reason,
    )


def customer_row(customer: Customer, now: str) -> tuple[Any, ...]:
    return (
        customer.chat_id,
        customer.user_id,
        customer.first_name,
        customer.last_name,
        customer.username,
        customer.language,
        now,
        now,
    )


async def open_conversation(conn: aiosqlite.Connection, chat_id: int, now: str) -> int:
    """The id of the chat's open conversation, started if there is none."""
    rows = await conn.execute_fetchall(
        "SELECT id FROM conversations WHERE chat_id = ? AND ended_at IS NULL "
        "ORDER BY id DESC LIMIT 1",
        (chat_id,),
    )
    for (conversation_id,) in rows:
        return int(conversation_id)
    cursor = await conn.execute(
        "INSERT INTO conversations (chat_id, started_at) VALUES (?, ?)", (chat_id, now)
    )
    return int(cursor.lastrowid or 0)
