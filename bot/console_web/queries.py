"""What the console shows, read from the bot's own tables.

Nothing here is stored twice: the pages read the same messages, answers,
tickets and feedback the bot writes, so /forget and the retention purge
(bot.privacy) take data out of the console at the same moment they take it out
of the database.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot.stats import Stats, compute_stats
from bot.store.db import Database, contains_pattern
from bot.store.ticket_record import STATUSES, TRANSCRIPT_MESSAGES, Ticket, transcript_params

PERIODS = (7, 30, 90)
PAGE_SIZE = 100


def period_days(raw: str | None) -> int:
    """?days=7|30|90; anything else is the default, 30."""
    return int(raw) if raw in {str(p) for p in PERIODS} else 30


def _since(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="milliseconds")


def _day_labels(days: int) -> list[str]:
    today = datetime.now(UTC).date()
    return [(today - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]


def _minutes(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 60


@dataclass
class Overview:
    days: int
    stats: Stats
    labels: list[str]
    messages: list[float | None]
    customers: list[float | None]
    answered_by: list[tuple[str, float]]
    reasons: list[tuple[str, float]]
    ratings: list[tuple[str, float]]
    feedback: list[tuple[str, float]]
    first_response: list[float | None]
    resolution: list[float | None]
    languages: list[tuple[str, float]]
    prompt_tokens: list[float | None]
    completion_tokens: list[float | None]
    latency: list[float | None]
    extra: dict[str, Any] = field(default_factory=dict)


async def overview(db: Database, days: int) -> Overview:
    since = _since(days)
    labels = _day_labels(days)
    daily = await db.fetchall(
        "SELECT substr(created_at, 1, 10) AS day, COUNT(*) AS messages, "
        "COUNT(DISTINCT chat_id) AS customers FROM messages "
        "WHERE role = 'customer' AND created_at >= ? GROUP BY day",
        (since,),
    )
    answered_by = await _answered_by(db, since)
    reasons = await db.fetchall(
        "SELECT COALESCE(reason, 'unknown') AS reason, COUNT(*) AS n FROM ticket_events "
        "WHERE event = 'escalated' AND created_at >= ? GROUP BY 1 ORDER BY n DESC, reason",
        (since,),
    )
    first_response, resolution, ratings = await _ticket_times(db, since, labels)
    stats = await compute_stats(db, days)
    languages = await db.fetchall(
        "SELECT COALESCE(NULLIF(c.language, ''), 'unknown') AS language, "
        "COUNT(DISTINCT m.chat_id) AS n FROM messages m "
        "JOIN customers c ON c.chat_id = m.chat_id "
        "WHERE m.role = 'customer' AND m.created_at >= ? GROUP BY 1 ORDER BY n DESC, 1 LIMIT 12",
        (since,),
    )
    model = await db.fetchall(
        "SELECT substr(m.created_at, 1, 10) AS day, SUM(a.prompt_tokens) AS prompt, "
        "SUM(a.completion_tokens) AS completion, AVG(a.latency_ms) / 1000.0 AS latency "
        "FROM answers a JOIN messages m ON m.id = a.message_id "
        "WHERE a.path = 'llm' AND m.created_at >= ? GROUP BY day",
        (since,),
    )
    return Overview(
        days=days,
        stats=stats,
        labels=labels,
        messages=_per_day(daily, "messages", labels),
        customers=_per_day(daily, "customers", labels),
        answered_by=answered_by,
        reasons=[(r["reason"], float(r["n"])) for r in reasons],
        ratings=ratings,
        feedback=[
            ("👍 helpful", float(stats.helpful)),
            ("👎 not helpful", float(stats.not_helpful)),
        ],
        first_response=first_response,
        resolution=resolution,
        languages=[(r["language"], float(r["n"])) for r in languages],
        prompt_tokens=_per_day(model, "prompt", labels, None),
        completion_tokens=_per_day(model, "completion", labels, None),
        latency=_per_day(model, "latency", labels, None),
    )


def _per_day(
    rows: list[Any], column: str, labels: list[str], empty: float | None = 0
) -> list[float | None]:
    """One value per day label; a day without a row is ``empty`` (None leaves a gap)."""
    by_day = {r["day"]: float(r[column]) for r in rows if r[column] is not None}
    return [by_day.get(d, empty) for d in labels]


async def _answered_by(db: Database, since: str) -> list[tuple[str, float]]:
    """Bot answers by the path that produced them, and the staff messages beside them."""
    paths = await db.fetchall(
        "SELECT a.path, COUNT(*) AS n FROM answers a JOIN messages m ON m.id = a.message_id "
        "WHERE m.created_at >= ? GROUP BY a.path",
        (since,),
    )
    staff = await db.fetchone(
        "SELECT COUNT(*) AS n FROM messages WHERE role = 'staff' AND created_at >= ?", (since,)
    )
    by_path = {r["path"]: int(r["n"]) for r in paths}
    answered_by = [
        ("FAQ", by_path.get("faq", 0) + by_path.get("canned", 0)),
        ("Model", by_path.get("llm", 0)),
        ("Staff replies", int(staff["n"]) if staff else 0),
        ("Handed over", by_path.get("handoff", 0)),
        ("Small talk", by_path.get("small_talk", 0)),
        ("Offered choices", by_path.get("choices", 0)),
    ]
    return [(k, float(v)) for k, v in answered_by]


async def _ticket_times(
    db: Database, since: str, labels: list[str]
) -> tuple[list[float | None], list[float | None], list[tuple[str, float]]]:
    """Median minutes to first response and to resolution per day opened, and the ratings."""
    tickets = await db.fetchall(
        "SELECT created_at, first_response_at, resolved_at, rating FROM tickets "
        "WHERE created_at >= ?",
        (since,),
    )
    first: dict[str, list[float]] = defaultdict(list)
    resolved: dict[str, list[float]] = defaultdict(list)
    rating_counts = dict.fromkeys(range(1, 6), 0)
    for t in tickets:
        day = t["created_at"][:10]
        if t["first_response_at"]:
            first[day].append(_minutes(t["created_at"], t["first_response_at"]))
        if t["resolved_at"]:
            resolved[day].append(_minutes(t["created_at"], t["resolved_at"]))
        if t["rating"] in rating_counts:
            rating_counts[t["rating"]] += 1
    return (
        [statistics.median(first[d]) if first.get(d) else None for d in labels],
        [statistics.median(resolved[d]) if resolved.get(d) else None for d in labels],
        [(f"{'★' * n}", float(c)) for n, c in rating_counts.items()],
    )


@dataclass(frozen=True)
class TicketFilter:
    status: str = ""
    reason: str = ""
    language: str = ""
    since: str = ""  # YYYY-MM-DD, inclusive
    until: str = ""  # YYYY-MM-DD, inclusive
    text: str = ""

    @classmethod
    def from_form(cls, form: Any) -> TicketFilter:
        def day(value: str) -> str:
            try:
                return date.fromisoformat(value).isoformat() if value else ""
            except ValueError:
                return ""

        status = str(form.get("status") or "")
        return cls(
            status=status if status in STATUSES else "",
            reason=str(form.get("reason") or "")[:64],
            language=str(form.get("language") or "")[:16],
            since=day(str(form.get("since") or "")),
            until=day(str(form.get("until") or "")),
            text=str(form.get("q") or "").strip()[:200],
        )


@dataclass(frozen=True)
class TicketRow:
    ticket: Ticket
    customer: str
    language: str


async def list_tickets(db: Database, chosen: TicketFilter) -> list[TicketRow]:
    where, params = ["1 = 1"], []
    if chosen.status:
        where.append("t.status = ?")
        params.append(chosen.status)
    if chosen.reason:
        where.append("t.reason = ?")
        params.append(chosen.reason)
    if chosen.language:
        where.append("COALESCE(c.language, '') = ?")
        params.append(chosen.language)
    if chosen.since:
        where.append("t.created_at >= ?")
        params.append(chosen.since)
    if chosen.until:
        where.append("t.created_at < ?")
        params.append((date.fromisoformat(chosen.until) + timedelta(days=1)).isoformat())
    if chosen.text:
        like = contains_pattern(chosen.text)
        where.append(
            "(CAST(t.id AS TEXT) = ? OR t.summary LIKE ? ESCAPE '\\' "
            "OR c.first_name LIKE ? ESCAPE '\\' OR c.username LIKE ? ESCAPE '\\' "
            "OR EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id "
            "AND m.text LIKE ? ESCAPE '\\'))"
        )
        params += [chosen.text.lstrip("#"), like, like, like, like]
    rows = await db.fetchall(
        "SELECT t.*, c.first_name AS c_first, c.last_name AS c_last, c.username AS c_user, "
        "c.language AS c_language FROM tickets t LEFT JOIN customers c ON c.chat_id = t.chat_id "
        f"WHERE {' AND '.join(where)} ORDER BY t.id DESC LIMIT {PAGE_SIZE}",
        params,
    )
    out = []
    for r in rows:
        name = " ".join(p for p in (r["c_first"], r["c_last"]) if p) or (
            f"@{r['c_user']}" if r["c_user"] else f"chat {r['chat_id']}"
        )
        out.append(TicketRow(Ticket.from_row(r), name, r["c_language"] or ""))
    return out


async def filter_choices(db: Database) -> tuple[list[str], list[str]]:
    """Reasons and languages that occur, for the filter menus."""
    reasons = await db.fetchall("SELECT DISTINCT reason FROM tickets ORDER BY reason")
    languages = await db.fetchall(
        "SELECT DISTINCT c.language FROM tickets t JOIN customers c ON c.chat_id = t.chat_id "
        "WHERE c.language IS NOT NULL AND c.language != '' ORDER BY 1"
    )
    return [r[0] for r in reasons], [r[0] for r in languages]


async def transcript(db: Database, ticket: Ticket) -> list[dict[str, Any]]:
    """The ticket's conversation with, on each bot answer, what it was built from."""
    rows = await db.fetchall(
        "SELECT m.id, m.role, m.kind, m.text, m.created_at, a.path, a.model, a.faq_ids, "
        "a.faq_confidence, a.knowledge_version, a.latency_ms, a.prompt_tokens, "
        "a.completion_tokens FROM messages m LEFT JOIN answers a ON a.message_id = m.id "
        "WHERE " + TRANSCRIPT_MESSAGES + " ORDER BY m.id",
        transcript_params(ticket),
    )
    return [dict(r) for r in rows]


async def customer_name(db: Database, chat_id: int) -> str:
    row = await db.fetchone(
        "SELECT first_name, last_name, username FROM customers WHERE chat_id = ?", (chat_id,)
    )
    if row is None:
        return f"chat {chat_id}"
    name = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
    return name or (f"@{row['username']}" if row["username"] else f"chat {chat_id}")
