"""Finding tickets: by chat, by staff-group message, by search, and the ones waiting.

Apart from the state changes (bot.store.tickets) because most callers only read,
and a read never needs the rules of who may claim, resolve or reopen a ticket.
"""

from __future__ import annotations

import time
from typing import Any

from bot.store.db import Database, contains_pattern
from bot.store.ticket_record import TRANSCRIPT_MESSAGES, Ticket, transcript_params

# How long this process trusts that a chat has no open ticket. Only the bot opens
# tickets, except ``tickets reopen`` from the command line: a running bot notices
# that within this many seconds.
NO_TICKET_TRUST_SECONDS = 30.0


class TicketLookups:
    def __init__(self, db: Database):
        self.db = db
        # Chats known to have no open ticket (and since when): most messages come from
        # them, and this saves a read per message. open_or_join and reopen forget what
        # they touch; a reopen from another process is seen after NO_TICKET_TRUST_SECONDS.
        self._without_open_ticket: dict[int, float] = {}

    async def get(self, ticket_id: int) -> Ticket | None:
        row = await self.db.fetchone("SELECT * FROM tickets WHERE id = ?", (ticket_id,))
        return Ticket.from_row(row) if row else None

    async def open_for_chat(self, chat_id: int) -> Ticket | None:
        known_since = self._without_open_ticket.get(chat_id)
        if known_since is not None and time.monotonic() - known_since < NO_TICKET_TRUST_SECONDS:
            return None
        row = await self.db.fetchone(
            "SELECT * FROM tickets WHERE chat_id = ? AND status != 'resolved'", (chat_id,)
        )
        if row is None:
            self._without_open_ticket[chat_id] = time.monotonic()
            return None
        self._without_open_ticket.pop(chat_id, None)
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

    async def search(self, term: str, limit: int = 20) -> list[Ticket]:
        """Tickets whose customer name or username, summary or relayed messages contain
        ``term`` (``#12`` or ``12`` finds ticket 12 too), newest first."""
        term = term.strip().lstrip("@")
        like = contains_pattern(term)
        ticket_id = int(term.lstrip("#")) if term.lstrip("#").isdigit() else -1
        like_ = "LIKE :like ESCAPE '\\'"
        rows = await self.db.fetchall(
            "SELECT t.* FROM tickets t LEFT JOIN customers c ON c.chat_id = t.chat_id "
            f"WHERE t.id = :id OR c.first_name {like_} OR c.last_name {like_} "
            f"OR c.username {like_} OR t.summary {like_} "
            f"OR (COALESCE(c.first_name, '') || ' ' || COALESCE(c.last_name, '')) {like_} "
            "OR EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id "
            f"AND m.role = 'customer' AND m.text {like_}) ORDER BY t.id DESC LIMIT :limit",
            {"id": ticket_id, "like": like, "limit": limit},
        )
        return [Ticket.from_row(r) for r in rows]

    async def earlier_for_chat(self, chat_id: int, before_id: int, limit: int = 5) -> list[Ticket]:
        """The customer's previous tickets, newest first: what staff should know on a new one."""
        rows = await self.db.fetchall(
            "SELECT * FROM tickets WHERE chat_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (chat_id, before_id, limit),
        )
        return [Ticket.from_row(r) for r in rows]

    async def waiting_for_first_response(self) -> list[tuple[Ticket, str | None]]:
        """Unresolved tickets no staff message has reached yet, with their last reminder time."""
        rows = await self.db.fetchall(
            "SELECT t.*, (SELECT MAX(e.created_at) FROM ticket_events e WHERE e.ticket_id = t.id "
            "AND e.event = 'sla_reminder') AS last_reminder FROM tickets t "
            "WHERE t.status != 'resolved' AND t.first_response_at IS NULL ORDER BY t.id"
        )
        return [(Ticket.from_row(r), r["last_reminder"]) for r in rows]

    async def transcript(self, ticket: Ticket) -> list[dict[str, Any]]:
        """Every message of the customer from the ticket's conversation on, notes included."""
        rows = await self.db.fetchall(
            "SELECT role, kind, text, created_at FROM messages m WHERE "
            + TRANSCRIPT_MESSAGES
            + " ORDER BY id",
            transcript_params(ticket),
        )
        return [dict(r) for r in rows]
