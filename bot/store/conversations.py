"""Customers, their conversations and every message in them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiosqlite

from bot.store.attachments import insert_attachments
from bot.store.db import Database, utcnow
from bot.store.message_rows import (
    HISTORY,
    INSERT_ANSWER,
    UPSERT_CUSTOMER,
    answer_row,
    customer_row,
    insert_message,
    open_conversation,
)

if TYPE_CHECKING:
    from bot.media import Attachment


@dataclass(frozen=True)
class Customer:
    """Who wrote to the bot. In private chats ``chat_id`` equals the user id."""

    chat_id: int
    user_id: int | None = None
    first_name: str = ""
    last_name: str = ""
    username: str = ""
    language: str = ""

    @property
    def display_name(self) -> str:
        name = " ".join(p for p in (self.first_name, self.last_name) if p).strip()
        return name or (f"@{self.username}" if self.username else f"chat {self.chat_id}")


@dataclass(frozen=True)
class StoredMessage:
    id: int
    role: str
    kind: str
    text: str | None
    created_at: str


@dataclass(frozen=True)
class AnswerAudit:
    """What produced a bot answer: kept with the answer so staff can see what the model saw."""

    path: str  # a ``bot.outcome.Path`` ("llm", "faq", "handoff", ...), or "canned"
    model: str | None = None
    request: list[dict[str, Any]] | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    faq_ids: tuple[str, ...] = ()
    faq_confidence: float | None = None
    knowledge_version: str | None = None
    # On the answer that handed the customer over: why (``bot.reasons``).
    escalation_reason: str | None = None


class ConversationStore:
    def __init__(self, db: Database):
        self.db = db
        # Per-message look-ups the bot would otherwise repeat on every message.
        self._conversation_ids: dict[int, int] = {}
        self._known_customers: dict[int, Customer] = {}

    async def upsert_customer(self, customer: Customer) -> None:
        if self._known_customers.get(customer.chat_id) == customer:
            return
        await self.db.execute(UPSERT_CUSTOMER, customer_row(customer, utcnow()))
        self._known_customers[customer.chat_id] = customer

    async def end_conversation(self, chat_id: int, reason: str) -> None:
        self._conversation_ids.pop(chat_id, None)
        await self.db.execute(
            "UPDATE conversations SET ended_at = ?, end_reason = ? "
            "WHERE chat_id = ? AND ended_at IS NULL",
            (utcnow(), reason, chat_id),
        )

    async def add_message(
        self,
        chat_id: int,
        role: str,
        text: str | None,
        *,
        kind: str = "text",
        telegram_message_id: int | None = None,
        ticket_id: int | None = None,
        audit: AnswerAudit | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> int:
        """Store a message (what produced it, what came with it) in one transaction.

        A customer's Telegram message is stored once: stored again (handled anew
        after a crash, or put off before its ticket opened) it is the same row,
        which joins ``ticket_id`` if it had no ticket yet.
        """
        known = self._conversation_ids.get(chat_id)
        now = utcnow()
        row = (chat_id, role, kind, text, telegram_message_id, ticket_id, now)
        answer = answer_row(audit) if audit is not None else None

        async def work(conn: aiosqlite.Connection) -> tuple[int, int]:
            conversation_id = known
            if conversation_id is None:
                conversation_id = await open_conversation(conn, chat_id, now)
            message_id, new = await insert_message(conn, row, conversation_id)
            if new and attachments:
                await insert_attachments(conn, message_id, chat_id, attachments, now)
            if new and answer is not None:
                await conn.execute(INSERT_ANSWER, (message_id, *answer))
            return conversation_id, message_id

        conversation_id, message_id = await self.db.write(work)
        if known is None:
            self._conversation_ids[chat_id] = conversation_id
        return message_id

    async def set_telegram_message_id(self, message_id: int, telegram_message_id: int) -> None:
        """Through the group commit: written together with the other chats' writes."""
        params = (telegram_message_id, message_id)
        sql = "UPDATE messages SET telegram_message_id = ? WHERE id = ?"
        await self.db.write(lambda conn: conn.execute(sql, params))

    async def history(self, chat_id: int, limit: int) -> list[StoredMessage]:
        """The latest customer and bot messages of the current conversation, oldest first."""
        rows = await self.db.fetchall(HISTORY, (chat_id, limit))
        return [
            StoredMessage(r["id"], r["role"], r["kind"], r["text"], r["created_at"])
            for r in reversed(rows)
        ]

    async def language_clues(self, chat_id: int, limit: int) -> tuple[list[str], str | None]:
        """The customer's latest texts, newest first, and their Telegram app's language."""
        rows = await self.db.fetchall(
            "SELECT text FROM messages WHERE chat_id = ? AND role = 'customer' "
            "AND text IS NOT NULL AND text != '' ORDER BY id DESC LIMIT ?",
            (chat_id, limit),
        )
        app = await self.db.fetchone("SELECT language FROM customers WHERE chat_id = ?", (chat_id,))
        return [r["text"] for r in rows], (app["language"] if app is not None else None)

    async def take_customer_message(
        self,
        customer: Customer,
        text: str | None,
        *,
        kind: str,
        telegram_message_id: int | None,
        history_limit: int,
        attachments: Sequence[Attachment] = (),
    ) -> list[StoredMessage]:
        """Store a customer's message and return the history before it, in one write.

        The same as ``upsert_customer``, ``history`` and ``add_message`` in turn,
        but in one transaction of the group commit, which the messages of other
        chats share: this is on every message the bot answers.
        A message stored before (a crash replay) is not stored again and is left
        out of the history: it must not count as the customer asking twice.
        """
        chat_id = customer.chat_id
        upsert = self._known_customers.get(chat_id) != customer
        known = self._conversation_ids.get(chat_id)
        now = utcnow()
        row = (chat_id, "customer", kind, text, telegram_message_id, None, now)

        async def work(conn: aiosqlite.Connection) -> tuple[int, list[Any]]:
            if upsert:
                await conn.execute(UPSERT_CUSTOMER, customer_row(customer, now))
            rows = await conn.execute_fetchall(HISTORY, (chat_id, history_limit))
            conversation_id = known
            if conversation_id is None:
                conversation_id = await open_conversation(conn, chat_id, now)
            message_id, new = await insert_message(conn, row, conversation_id)
            if new and attachments:
                await insert_attachments(conn, message_id, chat_id, attachments, now)
            return conversation_id, [r for r in rows if r[0] != message_id]

        conversation_id, rows = await self.db.write(work)
        if upsert:
            self._known_customers[chat_id] = customer
        if known is None:
            self._conversation_ids[chat_id] = conversation_id
        return [StoredMessage(r[0], r[1], r[2], r[3], r[4]) for r in reversed(rows)]

    async def get_customer(self, chat_id: int) -> Customer | None:
        row = await self.db.fetchone("SELECT * FROM customers WHERE chat_id = ?", (chat_id,))
        if row is None:
            return None
        return Customer(
            chat_id=row["chat_id"],
            user_id=row["user_id"],
            first_name=row["first_name"] or "",
            last_name=row["last_name"] or "",
            username=row["username"] or "",
            language=row["language"] or "",
        )

    async def message_chat(self, message_id: int) -> tuple[int, str] | None:
        """Chat and role of a stored message, to check a button press came from its own chat."""
        row = await self.db.fetchone(
            "SELECT chat_id, role FROM messages WHERE id = ?", (message_id,)
        )
        return (int(row["chat_id"]), str(row["role"])) if row else None

    async def add_feedback(self, message_id: int, chat_id: int, helpful: bool) -> None:
        await self.db.execute(
            "INSERT INTO feedback (message_id, chat_id, helpful, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(message_id) DO UPDATE SET helpful = excluded.helpful",
            (message_id, chat_id, int(helpful), utcnow()),
        )

    async def unhelpful_in_conversation(self, chat_id: int) -> int:
        row = await self.db.fetchone(
            "SELECT COUNT(*) AS n FROM feedback f JOIN messages m ON m.id = f.message_id "
            "JOIN conversations c ON c.id = m.conversation_id "
            "WHERE c.chat_id = ? AND c.ended_at IS NULL AND f.helpful = 0",
            (chat_id,),
        )
        return int(row["n"]) if row else 0

    async def attach_to_ticket(self, message_ids: Sequence[int], ticket_id: int) -> None:
        """Messages stored while put off become part of the ticket opened since."""
        rows = [(ticket_id, message_id) for message_id in message_ids]
        sql = "UPDATE messages SET ticket_id = ? WHERE id = ?"
        await self.db.write(lambda conn: conn.executemany(sql, rows))

    def forget_known(self, chat_id: int) -> None:
        """The customer's row was blanked (``/forget``): the next message writes it again."""
        self._known_customers.pop(chat_id, None)

    async def mark_blocked(self, chat_id: int) -> None:
        """Until the customer writes again: the next upsert must reach the database to clear it."""
        self._known_customers.pop(chat_id, None)
        await self.db.execute(
            "UPDATE customers SET blocked_at = ? WHERE chat_id = ?", (utcnow(), chat_id)
        )
