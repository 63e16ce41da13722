"""Prometheus metrics of one bot: what flows through it, and what the database says at scrape.

Each bot owns a private ``CollectorRegistry`` rather than the process-wide
default one, so several bots (in tests, or two brands in one process) never
mix their numbers or clash on registration.

Counts that the database already holds (open tickets, escalations by reason)
are read from it when Prometheus scrapes, not counted in memory: they survive
restarts and cannot drift from what ``tickets list`` shows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from bot.errors import (
    LLMConnectionError,
    LLMContextOverflow,
    LLMHTTPError,
    LLMTimeout,
    LLMUnavailable,
)
from bot.logging_setup import message_text

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger("bot.events")

PREFIX = "support_bot"
REPLY_PATHS = (
    "llm",
    "faq",
    "handoff",
    "relay",
    "notice",
    "small_talk",
    "choices",
    "deferred",
    "dropped",
)
TRIM_KINDS = ("history", "faq", "overflow_retry")
TICKET_STATUSES = ("open", "active")
TELEGRAM_RETRY_REASONS = ("rate_limited", "network")  # as bot.telegram.retry names them


def llm_error_kind(error: BaseException) -> str:
    """A short, bounded label for an LLM failure, so dashboards can group them."""
    if isinstance(error, LLMTimeout):
        return "timeout"
    if isinstance(error, LLMConnectionError):
        return "connection"
    if isinstance(error, LLMUnavailable):
        return "circuit_open"
    if isinstance(error, LLMContextOverflow):
        return "context_overflow"
    if isinstance(error, LLMHTTPError):
        status = getattr(error, "status", 0) or 0
        if status == 429:
            return "rate_limited"
        return "http_5xx" if status >= 500 else "http_4xx"
    return "bad_response"


class _DatabaseSnapshot(Collector):
    """Serves the values the last ``refresh`` read from the database.

    ``collect`` is synchronous and the database is not, so the /metrics handler
    awaits ``refresh`` right before rendering.
    """

    def __init__(self) -> None:
        self.tickets: dict[str, int] = dict.fromkeys(TICKET_STATUSES, 0)
        self.escalations: dict[str, int] = {}
        self.knowledge_version: str | None = None

    def describe(self) -> Iterable[object]:
        return list(self.collect())

    def collect(self) -> Iterator[object]:
        tickets = GaugeMetricFamily(
            f"{PREFIX}_open_tickets",
            "Unresolved tickets by status (open = waiting for staff).",
            labels=["status"],
        )
        for status in TICKET_STATUSES:
            tickets.add_metric([status], self.tickets.get(status, 0))
        yield tickets
        escalations = CounterMetricFamily(
            f"{PREFIX}_escalations",
            "Escalations (tickets opened or joined) by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(self.escalations.items()):
            escalations.add_metric([reason], count)
        yield escalations
        knowledge = InfoMetricFamily(
            f"{PREFIX}_knowledge", "Version of the persona and FAQ files being served."
        )
        knowledge.add_metric([], {"version": self.knowledge_version or "none"})
        yield knowledge


class BotMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages_in = Counter(
            f"{PREFIX}_messages_in", "Messages and commands from customers.", registry=r
        )
        self.messages_out = Counter(
            f"{PREFIX}_messages_out", "Messages the bot sent to customers.", registry=r
        )
        self.replies = Counter(
            f"{PREFIX}_replies",
            "Handled customer messages by how they were answered.",
            ["path"],
            registry=r,
        )
        for path in REPLY_PATHS:
            self.replies.labels(path)
        self.llm_latency = Histogram(
            f"{PREFIX}_llm_latency_seconds",
            "Duration of successful model calls.",
            buckets=(0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
            registry=r,
        )
        self.llm_errors = Counter(
            f"{PREFIX}_llm_errors", "Failed model calls by kind.", ["kind"], registry=r
        )
        self.prompt_trims = Counter(
            f"{PREFIX}_prompt_trims",
            "Model requests made smaller to fit the context window, by what was dropped.",
            ["kind"],
            registry=r,
        )
        for kind in TRIM_KINDS:
            self.prompt_trims.labels(kind)
        self.prompt_cuts = Counter(
            f"{PREFIX}_prompt_cut_by_server",
            "Answers whose reported prompt tokens show the server cut the prompt (Ollama).",
            registry=r,
        )
        self.media_in = Counter(
            f"{PREFIX}_media",
            "Photos, voice notes and files from customers by kind and what became of them.",
            ["kind", "outcome"],
            registry=r,
        )
        self.telegram_429 = Counter(
            f"{PREFIX}_telegram_rate_limited",
            "Bot API requests Telegram answered with 429 Too Many Requests.",
            registry=r,
        )
        self.telegram_retries = Counter(
            f"{PREFIX}_telegram_retries",
            "Bot API calls made again, by why: rate_limited (after a 429) or network.",
            ["reason"],
            registry=r,
        )
        for reason in TELEGRAM_RETRY_REASONS:
            self.telegram_retries.labels(reason)
        self.snapshot = _DatabaseSnapshot()
        r.register(self.snapshot)

    # -- instrumentation points ---------------------------------------------------------

    def replied(self, path: str) -> None:
        if path not in ("none", "ignored"):
            self.replies.labels(path).inc()

    def media(self, kind: str, outcome: str) -> None:
        self.media_in.labels(kind, outcome).inc()

    def llm_attempt(self, seconds: float, error: BaseException | None = None) -> None:
        if error is None:
            self.llm_latency.observe(seconds)
        else:
            self.llm_errors.labels(llm_error_kind(error)).inc()

    def prompt_trimmed(self, kind: str) -> None:
        self.prompt_trims.labels(kind).inc()

    def prompt_cut(self) -> None:
        self.prompt_cuts.inc()

    # -- scrape -------------------------------------------------------------------------

    async def refresh(self, services: Services | None) -> None:
        if services is None:
            return
        rows = await services.db.fetchall(
            "SELECT status, COUNT(*) AS n FROM tickets WHERE status != 'resolved' GROUP BY status"
        )
        counts = {str(row["status"]): int(row["n"]) for row in rows}
        self.snapshot.tickets = {s: counts.get(s, 0) for s in TICKET_STATUSES}
        rows = await services.db.fetchall(
            "SELECT COALESCE(reason, 'unknown') AS reason, COUNT(*) AS n FROM ticket_events "
            "WHERE event = 'escalated' GROUP BY 1"
        )
        self.snapshot.escalations = {str(row["reason"]): int(row["n"]) for row in rows}
        self.snapshot.knowledge_version = services.knowledge.current.version

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


# -- hooks for the Telegram adapter (duck-typed: this module stays free of Telegram) ------


async def note_incoming(update: Any, context: Any) -> None:
    """Count and log a customer's message; registered in a handler group of its own."""
    message = getattr(update, "message", None)
    chat = getattr(update, "effective_chat", None)
    if message is None or chat is None or chat.type != "private":
        return
    metrics = context.application.bot_data.get("metrics")
    if metrics is not None:
        metrics.messages_in.inc()
    text = message.text if message.text is not None else message.caption
    log.info("message in: chat %s, %s", chat.id, message_text(text))


def note_reply(context: Any, chat_id: int, path: str) -> None:
    """Count and log how a customer's message was answered."""
    if path in ("none", "ignored"):
        return
    metrics = context.application.bot_data.get("metrics")
    if metrics is not None:
        metrics.replied(path)
    log.info("answered: chat %s via %s", chat_id, path)
