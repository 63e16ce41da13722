"""A ticket as a value, and which messages make up its transcript.

Kept apart from the store so the console, the command line and the staff desk can
read tickets and their transcripts with one definition of both, without the writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

    @property
    def is_claimed(self) -> bool:
        return self.assignee_id is not None

    @classmethod
    def from_row(cls, row: Any) -> Ticket:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


# The messages of a ticket's transcript (table alias ``m``): the customer's, from the
# start of the conversation the ticket was opened in until it was resolved, and any
# message filed under the ticket. Parameters: ``transcript_params(ticket)``.
TRANSCRIPT_MESSAGES = (
    "m.chat_id = ? AND (m.ticket_id = ? OR (m.created_at >= (SELECT started_at "
    "FROM conversations WHERE chat_id = ? AND started_at <= ? ORDER BY id DESC LIMIT 1) "
    "AND m.created_at <= COALESCE(?, '9999')))"
)


def transcript_params(ticket: Ticket) -> tuple[Any, ...]:
    return (ticket.chat_id, ticket.id, ticket.chat_id, ticket.created_at, ticket.resolved_at)
