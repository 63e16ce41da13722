"""Tickets: one unresolved ticket per customer, and an event for every change to it."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from bot.store.db import Database, utcnow

STATUSES = ("open", "active", "resolved")


@dataclass(frozen=True)
class Ticket:
    id: int
    chat_id: int
    user_id: int | None
    status: str
    reason: str
    summary: str | None
    assignee_id: int | None
    assignee_name: str | None
    staff_chat_id: int | None
    staff_thread_id: int | None
    staff_card_message_id: int | None
    rating: int | None
    created_at: str
    first_response_at: str | None
    resolved_at: str | None

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    @classmethod
    def from_row(cls, row: Any) -> Ticket:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


class TicketStore:
    def __init__(self, db: Database):
        self.db = db
        # Chats known to have no open ticket: most messages come from them, and this
        # saves a read per message. Only open_or_join and reopen can open a ticket,
        # and both forget what they touch; nothing outside this process opens one.
        self._without_open_ticket: set[int] = set()

    async def open_or_join(
        self, chat_id: int, user_id: int | None, reason: str, summary: str | None, actor: str
    ) -> tuple[Ticket, bool]:
        """Open a ticket for the customer, or join the one already open; True when it is new.

        The partial unique index makes a second open ticket impossible even if two
        triggers race; the loser of the race simply joins the winner's ticket.
        """
        self._without_open_ticket.discard(chat_id)
        existing = await self.open_for_chat(chat_id)
        if existing is None:
            self._without_open_ticket.discard(chat_id)
            now = utcnow()
            try:
                async with self.db.transaction() as conn:
                    cursor = await conn.execute(
                        "INSERT INTO tickets (chat_id, user_id, status, reason, summary, "
                        "created_at, updated_at) VALUES (?, ?, 'open', ?, ?, ?, ?)",
                        (chat_id, user_id, reason, summary, now, now),
                    )
                    ticket_id = cursor.lastrowid
                    await conn.execute(
                        "INSERT INTO ticket_events (ticket_id, event, reason, actor, detail, "
                        "created_at) VALUES (?, 'escalated', ?, ?, ?, ?)",
                        (ticket_id, reason, actor, summary, now),
                    )
                self._without_open_ticket.discard(chat_id)
                ticket = await self.get(int(ticket_id or 0))
                assert ticket is not None
                return ticket, True
            except sqlite3.IntegrityError:
                existing = await self.open_for_chat(chat_id)
                if existing is None:
                    raise
        await self.add_event(existing.id, "escalated", reason=reason, actor=actor, detail=summary)
        return existing, False

    async def get(self, ticket_id: int) -> Ticket | None:
        row = await self.db.fetchone("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        return Ticket.from_row(row) if row else None

    async def open_for_chat(self, chat_id: int) -> Ticket | None:
        if chat_id in self._without_open_ticket:
            return None
        row = await self.db.fetchone(
            "SELECT * FROM tickets WHERE chat_id = ? AND status != 'resolved'", (chat_id,)
        )
        if row is None:
            self._without_open_ticket.add(chat_id)
            return None
        return Ticket.from_row(row)

    async def by_staff_thread(self, staff_chat_id: int, thread_id: int) -> Ticket | None:
        row = await self.db.fetchone(
            "SELECT * FROM tickets WHERE staff_chat_id = ? AND staff_thread_id = ? "
            "ORDER BY id DESC LIMIT 1",
            (staff_chat_id, thread_id),
        )
        return Ticket.from_row(row) if row else None

    async def by_staff_message(self, staff_chat_id: int, message_id: int) -> Ticket | None:
        """The ticket a staff message belongs to: its card, or any message relayed for it."""
        row = await self.db.fetchone(
            """
            SELECT t.* FROM tickets t WHERE t.staff_chat_id = ? AND t.staff_card_message_id = ?
            UNION
            SELECT t.* FROM tickets t JOIN relayed_messages r ON r.ticket_id = t.id
            WHERE r.staff_chat_id = ? AND r.staff_message_id = ?
            LIMIT 1
            """,
            (staff_chat_id, message_id, staff_chat_id, message_id),
        )
        return Ticket.from_row(row) if row else None

    async def set_staff_place(
        self, ticket_id: int, staff_chat_id: int, thread_id: int | None, card_message_id: int | None
    ) -> None:
        await self.db.execute(
            "UPDATE tickets SET staff_chat_id = ?, staff_thread_id = COALESCE(?, staff_thread_id), "
            "staff_card_message_id = COALESCE(?, staff_card_message_id), updated_at = ? "
            "WHERE id = ?",
            (staff_chat_id, thread_id, card_message_id, utcnow(), ticket_id),
        )

    async def record_relay(
        self,
        ticket_id: int,
        staff_chat_id: int,
        staff_message_id: int,
        customer_chat_id: int,
        customer_message_id: int | None,
    ) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO relayed_messages (staff_chat_id, staff_message_id, "
            "customer_chat_id, customer_message_id, ticket_id) VALUES (?, ?, ?, ?, ?)",
            (staff_chat_id, staff_message_id, customer_chat_id, customer_message_id, ticket_id),
        )

    async def claim(self, ticket_id: int, staff_id: int, staff_name: str) -> None:
        now = utcnow()
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE tickets SET status = 'active', assignee_id = ?, assignee_name = ?, "
                "first_response_at = COALESCE(first_response_at, ?), updated_at = ? WHERE id = ?",
                (staff_id, staff_name, now, now, ticket_id),
            )
            await self._event(conn, ticket_id, "claimed", None, f"staff:{staff_id}", staff_name)

    async def staff_replied(self, ticket_id: int, staff_id: int, staff_name: str) -> None:
        """A first staff reply makes the ticket active and sets the first-response time."""
        now = utcnow()
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE tickets SET status = 'active', first_response_at = COALESCE("
                "first_response_at, ?), assignee_id = COALESCE(assignee_id, ?), "
                "assignee_name = COALESCE(assignee_name, ?), updated_at = ? "
                "WHERE id = ? AND status = 'open'",
                (now, staff_id, staff_name, now, ticket_id),
            )
            if cursor.rowcount:
                await self._event(conn, ticket_id, "active", None, f"staff:{staff_id}", None)

    async def resolve(self, ticket_id: int, actor: str) -> bool:
        now = utcnow()
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE tickets SET status = 'resolved', resolved_at = ?, updated_at = ? "
                "WHERE id = ? AND status != 'resolved'",
                (now, now, ticket_id),
            )
            if not cursor.rowcount:
                return False
            await self._event(conn, ticket_id, "resolved", None, actor, None)
        return True

    async def reopen(self, ticket_id: int, actor: str) -> bool:
        """Reopen a resolved ticket, unless the customer already has another one open."""
        self._without_open_ticket.clear()  # the ticket's chat is not known here
        now = utcnow()
        try:
            async with self.db.transaction() as conn:
                cursor = await conn.execute(
                    "UPDATE tickets SET status = 'active', resolved_at = NULL, updated_at = ? "
                    "WHERE id = ? AND status = 'resolved'",
                    (now, ticket_id),
                )
                if not cursor.rowcount:
                    return False
                await self._event(conn, ticket_id, "reopened", None, actor, None)
        except sqlite3.IntegrityError:
            return False
        finally:
            # Again after the write: a read that raced with it may have put the chat back.
            self._without_open_ticket.clear()
        return True

    async def rate(self, ticket_id: int, chat_id: int, rating: int) -> bool:
        """Store a rating, only from the ticket's own customer."""
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE tickets SET rating = ?, updated_at = ? WHERE id = ? AND chat_id = ?",
                (rating, utcnow(), ticket_id, chat_id),
            )
            if cursor.rowcount:
                await self._event(
                    conn, ticket_id, "rated", None, f"customer:{chat_id}", str(rating)
                )
            return bool(cursor.rowcount)

    async def add_event(
        self,
        ticket_id: int,
        event: str,
        *,
        reason: str | None = None,
        actor: str | None = None,
        detail: str | None = None,
    ) -> None:
        async with self.db.transaction() as conn:
            await self._event(conn, ticket_id, event, reason, actor, detail)

    async def events(self, ticket_id: int) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT event, reason, actor, detail, created_at FROM ticket_events "
            "WHERE ticket_id = ? ORDER BY id",
            (ticket_id,),
        )
        return [dict(r) for r in rows]

    async def list(self, status: str | None = None) -> list[Ticket]:
        if status == "unresolved":
            rows = await self.db.fetchall(
                "SELECT * FROM tickets WHERE status != 'resolved' ORDER BY created_at, id"
            )
        elif status:
            rows = await self.db.fetchall(
                "SELECT * FROM tickets WHERE status = ? ORDER BY created_at, id", (status,)
            )
        else:
            rows = await self.db.fetchall("SELECT * FROM tickets ORDER BY id")
        return [Ticket.from_row(r) for r in rows]

    async def transcript(self, ticket: Ticket) -> list[dict[str, Any]]:
        """Every message of the customer from the ticket's conversation on, notes included."""
        rows = await self.db.fetchall(
            "SELECT role, kind, text, created_at FROM messages WHERE chat_id = ? "
            "AND (ticket_id = ? OR (created_at >= (SELECT started_at FROM conversations "
            "WHERE chat_id = ? AND started_at <= ? ORDER BY id DESC LIMIT 1) "
            "AND created_at <= COALESCE(?, '9999'))) ORDER BY id",
            (ticket.chat_id, ticket.id, ticket.chat_id, ticket.created_at, ticket.resolved_at),
        )
        return [dict(r) for r in rows]

    @staticmethod
    async def _event(
        conn: Any,
        ticket_id: int,
        event: str,
        reason: str | None,
        actor: str | None,
        detail: str | None,
    ) -> None:
        await conn.execute(
            "INSERT INTO ticket_events (ticket_id, event, reason, actor, detail, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ticket_id, event, reason, actor, detail, utcnow()),
        )
