"""Support figures for a period: how much the bot handled alone and how fast staff helped."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store.db import Database


@dataclass(frozen=True)
class Stats:
    since: str
    conversations: int
    handed_over: int
    escalations_by_reason: dict[str, int]
    median_first_response_minutes: float | None
    median_resolution_minutes: float | None
    average_rating: float | None
    ratings: int

    @property
    def deflection_rate(self) -> float | None:
        """Share of conversations the bot finished without a person."""
        if not self.conversations:
            return None
        return 1 - min(self.handed_over, self.conversations) / self.conversations

    def lines(self) -> list[str]:
        def minutes(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f} min"

        rate = self.deflection_rate
        out = [
            f"Since {self.since[:16]} UTC",
            f"Conversations: {self.conversations}",
            f"Answered by the bot alone: {'-' if rate is None else f'{rate:.0%}'}",
            f"Handed to staff: {self.handed_over}",
            "Escalations by reason: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.escalations_by_reason.items())) or "-"),
            f"Median time to first staff response: {minutes(self.median_first_response_minutes)}",
            f"Median resolution time: {minutes(self.median_resolution_minutes)}",
            "Average rating: "
            + (
                "-"
                if self.average_rating is None
                else f"{self.average_rating:.2f} ({self.ratings})"
            ),
        ]
        return out


def _minutes_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 60


async def compute_stats(db: Database, days: float = 30) -> Stats:
    since = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds")
    conversations = await db.fetchone(
        "SELECT COUNT(DISTINCT conversation_id) AS n FROM messages "
        "WHERE role = 'customer' AND created_at >= ?",
        (since,),
    )
    tickets = await db.fetchall("SELECT * FROM tickets WHERE created_at >= ?", (since,))
    reasons = await db.fetchall(
        "SELECT reason, COUNT(*) AS n FROM ticket_events WHERE event = 'escalated' "
        "AND created_at >= ? GROUP BY reason",
        (since,),
    )
    first = [
        _minutes_between(t["created_at"], t["first_response_at"])
        for t in tickets
        if t["first_response_at"]
    ]
    resolved = [
        _minutes_between(t["created_at"], t["resolved_at"]) for t in tickets if t["resolved_at"]
    ]
    ratings = [t["rating"] for t in tickets if t["rating"]]
    return Stats(
        since=since,
        conversations=int(conversations["n"]) if conversations else 0,
        handed_over=len(tickets),
        escalations_by_reason={r["reason"]: int(r["n"]) for r in reasons},
        median_first_response_minutes=statistics.median(first) if first else None,
        median_resolution_minutes=statistics.median(resolved) if resolved else None,
        average_rating=statistics.fmean(ratings) if ratings else None,
        ratings=len(ratings),
    )
