"""Tickets: one unresolved ticket per customer, and an event for every change to it."""

from __future__ import annotations

import sqlite3
from typing import Any

from bot.reasons import outranks
from bot.store.db import utcnow
from bot.store.ticket_lookups import TicketLookups
from bot.store.ticket_record import Ticket


def summary_of(texts: list[str], limit: int = 500) -> str:
    """The customer's latest messages, joined, cut at a word boundary before ``limit``.

    The newest words matter most to the person picking the ticket up, so the
    cut drops the oldest ones and says so with an ellipsis.
    """
    joined = " / ".join(t.strip() for t in texts if t and t.strip())
    if len(joined) <= limit:
        return joined
    tail = joined[-(limit - 2) :]
    space = tail.find(" ")
    if 0 <= space < len(tail) // 2:
        tail = tail[space + 1 :]
    return "… " + tail.lstrip(" /")


class TicketStore(TicketLookups):
    """The state changes of a ticket, each with its event; the reads come from TicketLookups."""

    async def open_or_join(
        self, chat_id: int, user_id: int | None, reason: str, summary: str | None, actor: str
    ) -> tuple[Ticket, bool]:
        """Open a ticket for the customer, or join the one already open; True when it is new.

        The partial unique index makes a second open ticket impossible even if two
        triggers race; the loser of the race simply joins the winner's ticket.
        """
        self._without_open_ticket.pop(chat_id, None)
        existing = await self.open_for_chat(chat_id)
        if existing is None:
            self._without_open_ticket.pop(chat_id, None)
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
                self._without_open_ticket.pop(chat_id, None)
                ticket = await self.get(int(ticket_id or 0))
                assert ticket is not None
                return ticket, True
            except sqlite3.IntegrityError:
                existing = await self.open_for_chat(chat_id)
                if existing is None:
                    raise
        return await self._join(existing, reason, summary, actor), False

    async def _join(self, ticket: Ticket, reason: str, summary: str | None, actor: str) -> Ticket:
        """A new escalation on an open ticket: a stronger reason replaces the old one.

        Only a change of reason is an event; asking again for the same reason (a
        customer re-asking while waiting) just refreshes the summary, so the log
        shows one line per real change instead of one per message.
        """
        upgrade = outranks(reason, ticket.reason)
        if not upgrade and (not summary or summary == ticket.summary):
            return ticket
        now = utcnow()
        async with self.db.transaction() as conn:
            await conn.execute(
                "UPDATE tickets SET reason = ?, summary = COALESCE(?, summary), updated_at = ? "
                "WHERE id = ?",
                (reason if upgrade else ticket.reason, summary, now, ticket.id),
            )
            if upgrade:
                await self._event(conn, ticket.id, "escalated", reason, actor, summary)
        return await self.get(ticket.id) or ticket

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

    async def claim(
        self, ticket_id: int, staff_id: int, staff_name: str, *, force: bool = False
    ) -> Ticket | None:
        """Take an unresolved ticket; someone else's only with ``force`` (a recorded takeover).

        Returns the ticket as it was before, or None when it is resolved or gone.
        The check and the write are one transaction, so two agents pressing Claim
        at once cannot both win. A claim is not a response: the first-response
        time waits for a message to the customer.
        """
        now = utcnow()
        async with self.db.transaction() as conn:
            async with conn.execute(
                "SELECT * FROM tickets WHERE id = ? AND status != 'resolved'", (ticket_id,)
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            before = Ticket.from_row(row)
            held_by_other = before.is_claimed and before.assignee_id != staff_id
            if held_by_other and not force:
                return before
            await conn.execute(
                "UPDATE tickets SET status = 'active', assignee_id = ?, assignee_name = ?, "
                "updated_at = ? WHERE id = ?",
                (staff_id, staff_name, now, ticket_id),
            )
            if held_by_other:
                detail = f"{staff_name} from {before.assignee_name or before.assignee_id}"
                await self._event(conn, ticket_id, "taken_over", None, f"staff:{staff_id}", detail)
            elif before.assignee_id != staff_id:
                await self._event(conn, ticket_id, "claimed", None, f"staff:{staff_id}", staff_name)
        return before

    async def staff_replied(self, ticket_id: int, staff_id: int, staff_name: str) -> None:
        """A staff message reached the customer: the first one sets the first-response time.

        It also makes the ticket active, with the sender as assignee if nobody claimed it.
        """
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
            else:  # already active (claimed, or answered before)
                await conn.execute(
                    "UPDATE tickets SET first_response_at = COALESCE(first_response_at, ?), "
                    "updated_at = ? WHERE id = ? AND status = 'active'",
                    (now, now, ticket_id),
                )

    async def resolve(
        self,
        ticket_id: int,
        actor: str,
        resolution: str | None = None,
        *,
        only_unclaimed: bool = False,
    ) -> bool:
        """Resolve an unresolved ticket; ``resolution`` (e.g. "handback") goes on its event.

        ``only_unclaimed`` resolves it only while nobody has taken it (status 'open'),
        decided in the one statement, so a claim at the same moment either wins or
        finds the ticket resolved.
        """
        now = utcnow()
        status = "status = 'open'" if only_unclaimed else "status != 'resolved'"
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE tickets SET status = 'resolved', resolved_at = ?, updated_at = ? "
                f"WHERE id = ? AND {status}",
                (now, now, ticket_id),
            )
            if not cursor.rowcount:
                return False
            await self._event(conn, ticket_id, "resolved", None, actor, resolution)
        return True

    async def withdraw(self, ticket_id: int, actor: str) -> bool:
        """Resolve a ticket nobody has taken yet as "withdrawn"; False once someone has."""
        return await self.resolve(ticket_id, actor, "withdrawn", only_unclaimed=True)

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
        at: str | None = None,
    ) -> None:
        """Record an event; ``at`` (ISO-8601 UTC) for a clock other than the system's."""
        async with self.db.transaction() as conn:
            await self._event(conn, ticket_id, event, reason, actor, detail, at)

    @staticmethod
    async def _event(
        conn: Any,
        ticket_id: int,
        event: str,
        reason: str | None,
        actor: str | None,
        detail: str | None,
        at: str | None = None,
    ) -> None:
        await conn.execute(
            "INSERT INTO ticket_events (ticket_id, event, reason, actor, detail, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (ticket_id, event, reason, actor, detail, at or utcnow()),
        )
