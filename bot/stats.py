"""Support figures for a period: how much the bot handled alone and how fast staff helped."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.store.db import Database


@dataclass(frozen=True)
class Stats:
    since: str
    conversations: int
    handed_over: int
    tickets_by_reason: dict[str, int]  # each ticket once, under the reason it ended with
    median_first_response_minutes: float | None
    median_resolution_minutes: float | None
    average_rating: float | None
    ratings: int
    helpful: int = 0  # 👍 presses under answers
    not_helpful: int = 0  # 👎 presses
    top_faq: tuple[tuple[str, int], ...] = ()  # (entry id, answers built on it), most first

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
            "Tickets by reason: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.tickets_by_reason.items())) or "-"),
            f"Median time to first staff response: {minutes(self.median_first_response_minutes)}",
            f"Median resolution time: {minutes(self.median_resolution_minutes)}",
            "Average rating: "
            + (
                "-"
                if self.average_rating is None
                else f"{self.average_rating:.2f} ({self.ratings})"
            ),
            f"Answer feedback: 👍 {self.helpful} · 👎 {self.not_helpful}",
            "Most-used FAQ entries: "
            + (", ".join(f"{entry} {n}" for entry, n in self.top_faq) or "-"),
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
    feedback = await db.fetchone(
        "SELECT COALESCE(SUM(helpful = 1), 0) AS up, COALESCE(SUM(helpful = 0), 0) AS down "
        "FROM feedback WHERE created_at >= ?",
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
        tickets_by_reason=dict(Counter(t["reason"] for t in tickets)),
        median_first_response_minutes=statistics.median(first) if first else None,
        median_resolution_minutes=statistics.median(resolved) if resolved else None,
        average_rating=statistics.fmean(ratings) if ratings else None,
        ratings=len(ratings),
        helpful=int(feedback["up"]) if feedback else 0,
        not_helpful=int(feedback["down"]) if feedback else 0,
        top_faq=await _top_faq(db, since),
    )


async def _top_faq(db: Database, since: str, limit: int = 5) -> tuple[tuple[str, int], ...]:
    """Entries answers were built on: the best match of bot answers, and canned staff replies."""
    rows = await db.fetchall(
        "SELECT a.faq_ids FROM answers a JOIN messages m ON m.id = a.message_id "
        "WHERE a.path IN ('faq', 'llm', 'canned') AND a.faq_ids != '' AND m.created_at >= ?",
        (since,),
    )
    counts = Counter(r["faq_ids"].split(",")[0] for r in rows)
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit])
