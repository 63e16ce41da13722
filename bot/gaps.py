"""Knowledge gaps: the questions the FAQ could not answer, grouped, with what staff said.

Every handoff the bot made because its FAQ fell short, every answer the model gave
without FAQ material, and every answer a customer rated 👎 is a question the FAQ
should have answered. Collected from the database and grouped by meaning (across
languages, ``bot.gap_clusters``), they become a short list an admin can work
through: how many customers asked, in which languages, which FAQ entry came
closest (a high score means the entry exists but is worded so customers miss it;
a low one means there is none), and how staff answered, which is most of a new
entry already (``bot.gap_drafts``). Nothing here writes to the FAQ.

Which answers count as a gap, and for which reason, is ``bot.gap_questions``.
Every text leaves this module scrubbed of personal data (``bot.pii``); only the
web console and the command line read it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot import gap_clusters
from bot.gap_drafts import condense_drafts, draft_eval_yaml, draft_faq_yaml, make_draft
from bot.gap_questions import UnansweredQuestion, unanswered_questions
from bot.knowledge.language import detect_language, main_language
from bot.knowledge.sentence_model import SentenceModel, load_model
from bot.pii import scrub

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

__all__ = [
    "GapGroup",
    "GapMessage",
    "condense_drafts",
    "draft_eval_yaml",
    "draft_faq_yaml",
    "find_gaps",
]

REPRESENTATIVES = 5  # messages searched for the closest entry, and shown first
_DEFAULT = object()


@dataclass
class GapMessage:
    text: str  # already scrubbed of personal data
    language: str  # ISO code or "" if unknown
    reason: str  # one of bot.gap_questions.REASONS
    at: str  # ISO UTC timestamp
    ticket_id: int | None
    # Which customer wrote it, for counting customers; never shown or exported.
    chat_id: int = field(default=0, repr=False)


@dataclass
class GapGroup:
    size: int
    customers: int
    messages: list[GapMessage]  # representatives first
    languages: list[str]
    closest_faq: dict | None  # {"id": str, "score": float}
    staff_answers: list[str]  # scrubbed
    draft: dict  # {"id", "question", "answer", "examples"}
    last_seen: str
    reasons: dict[str, int] = field(default_factory=dict)  # how many messages per reason

    def to_json(self) -> dict:
        """The ``gaps --json`` object: no customer identifiers, only scrubbed text."""
        messages = [{k: v for k, v in asdict(m).items() if k != "chat_id"} for m in self.messages]
        return {
            "size": self.size,
            "customers": self.customers,
            "messages": messages,
            "languages": list(self.languages),
            "closest_faq": dict(self.closest_faq) if self.closest_faq else None,
            "staff_answers": list(self.staff_answers),
            "draft": dict(self.draft),
            "last_seen": self.last_seen,
            "reasons": dict(self.reasons),
        }


async def find_gaps(
    services: Services,
    *,
    days: float | None = None,
    now: datetime | None = None,
    model: Any = _DEFAULT,
) -> list[GapGroup]:
    """The gaps of the last ``days`` (all without), biggest by customers first, then newest.

    ``model``: the sentence model to group with; None groups by word overlap (the
    same as when the bundled model cannot load here).
    """
    since = None
    if days is not None:
        since = _iso((now or datetime.now(UTC)) - timedelta(days=days))
    questions = await unanswered_questions(services.db, since)
    if not questions:
        return []
    questions = questions[-gap_clusters.MAX_MESSAGES :]
    names, hints = await _customers(services, {q.chat_id for q in questions})
    texts = [scrub(q.text, names.get(q.chat_id, ())) for q in questions]
    sentence_model = load_model() if model is _DEFAULT else model
    groups, similarities = await _group(texts, sentence_model)
    tickets = {q.ticket_id for q in questions if q.ticket_id}
    staff = await _staff_answers(services, tickets, names)
    entries = services.knowledge.current.faq.entries
    taken = {entry.id for entry in entries}
    faq_language = main_language(entry.question for entry in entries)
    result = []
    for members in groups:
        ordered = gap_clusters.centre_order(similarities, members)
        messages = [_message(questions[i], texts[i], hints) for i in ordered]
        group = await _gap_group(services, messages, staff)
        group.draft = make_draft(group, taken, faq_language)
        taken.add(group.draft["id"])
        result.append(group)
    result.sort(key=lambda g: g.last_seen, reverse=True)
    result.sort(key=lambda g: g.customers, reverse=True)
    return result


def _message(question: UnansweredQuestion, text: str, hints: dict[int, str]) -> GapMessage:
    """A question as the report shows it: its scrubbed ``text``, and its language."""
    language = detect_language(text, hints.get(question.chat_id, "")) or ""
    return GapMessage(
        text, language, question.reason, question.at, question.ticket_id, question.chat_id
    )


async def _gap_group(
    services: Services, messages: list[GapMessage], staff: dict[int, list[str]]
) -> GapGroup:
    """A group of messages, representatives first, with its counts, what staff answered
    and the closest FAQ entry; its draft is left to the caller, who knows the ids taken."""
    tickets = list(dict.fromkeys(m.ticket_id for m in messages if m.ticket_id))
    answers = list(dict.fromkeys(a for t in tickets for a in staff.get(t, [])))
    closest = await _closest_faq(services, [m.text for m in messages[:REPRESENTATIVES]])
    return GapGroup(
        size=len(messages),
        customers=len({m.chat_id for m in messages}),
        messages=messages,
        languages=[
            code for code, _ in Counter(m.language for m in messages if m.language).most_common()
        ],
        closest_faq=closest,
        staff_answers=answers,
        draft={},
        last_seen=max(m.at for m in messages),
        reasons=dict(Counter(m.reason for m in messages).most_common()),
    )


async def _group(texts: list[str], model: SentenceModel | None) -> tuple[list[list[int]], Any]:
    if model is not None:
        try:
            vectors = await asyncio.to_thread(model.vectors, texts, True)
            return gap_clusters.cluster_vectors(vectors), vectors @ vectors.T
        except Exception:  # the model failed on this machine: words still group
            log.exception("could not embed the gap messages; grouping them by words")
    similarities = await asyncio.to_thread(gap_clusters.word_similarities, texts)
    return gap_clusters.average_linkage(
        similarities, gap_clusters.WORD_OVERLAP_THRESHOLD
    ), similarities


async def _closest_faq(services: Services, texts: list[str]) -> dict | None:
    """The entry the bot's own search ranks first for the group, at its best confidence."""
    knowledge = services.knowledge.current
    best: tuple[float, str] | None = None
    for text in texts:
        results = await services.core.retrieve(knowledge, text, 1)
        if results and (best is None or results[0].confidence > best[0]):
            best = (results[0].confidence, results[0].id)
    if best is None:
        return None
    return {"id": best[1], "score": round(float(best[0]), 3)}


async def _customers(
    services: Services, chats: set[int]
) -> tuple[dict[int, tuple[str, ...]], dict[int, str]]:
    """The customers' Telegram names, to scrub wherever they appear, and the language
    of their app, a hint for telling the language of short messages."""
    names: dict[int, tuple[str, ...]] = {}
    hints: dict[int, str] = {}
    for chat_id in chats:
        customer = await services.conversations.get_customer(chat_id)
        if customer is not None:
            parts = (customer.first_name, customer.last_name, customer.username)
            names[chat_id] = tuple(p for p in parts if p)
            hints[chat_id] = customer.language
    return names, hints


async def _staff_answers(
    services: Services, tickets: set[int], names: dict[int, tuple[str, ...]]
) -> dict[int, list[str]]:
    """What staff sent the customer on each ticket, scrubbed, in order."""
    answers: dict[int, list[str]] = {}
    if not tickets:
        return answers
    marks = ",".join("?" * len(tickets))
    rows = await services.db.fetchall(
        "SELECT ticket_id, chat_id, text FROM messages WHERE role = 'staff' "
        f"AND ticket_id IN ({marks}) AND text IS NOT NULL ORDER BY id",
        tuple(sorted(tickets)),
    )
    for row in rows:
        text = scrub(str(row["text"]).strip(), names.get(row["chat_id"], ()))
        if text:
            answers.setdefault(int(row["ticket_id"]), []).append(text)
    return answers


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")  # as bot.store.db.utcnow
