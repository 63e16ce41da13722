"""Knowledge gaps: the questions the FAQ could not answer, grouped, with what staff said.

Every handoff the bot made because its FAQ fell short, every answer the model gave
without FAQ material, and every answer a customer rated 👎 is a question the FAQ
should have answered. Collected from the database and grouped by meaning (across
languages, ``bot.gap_clusters``), they become a short list an admin can work
through: how many customers asked, in which languages, which FAQ entry came
closest (a high score means the entry exists but is worded so customers miss it;
a low one means there is none), and how staff answered, which is most of a new
entry already (``bot.gap_drafts``). Nothing here writes to the FAQ.

What counts as a gap, by reason:

* ``low_confidence``, ``llm_error``: handed over because no entry matched well
  enough, or the model failed and no entry matched well enough either;
* ``model``: the model handed over itself (usually: the material did not cover it);
* ``repeated``: the customer asked the same thing again;
* ``ungrounded``: the model answered, but no FAQ entry reached its prompt;
* ``negative_feedback``: an answer the customer rated 👎.

Hand-overs a customer asked for, phrase rules and media are not gaps: the FAQ
was not what failed there. Every text leaves this module scrubbed of personal
data (``bot.pii``); only the web console and the command line read it.
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

REASONS = ("low_confidence", "llm_error", "ungrounded", "model", "negative_feedback", "repeated")
# Escalation reasons that mean the FAQ fell short (the rest: the customer asked, a rule).
_ESCALATION_GAPS = ("low_confidence", "llm_error", "model", "repeated")
# When one message is a gap for several reasons, the one shown: the handoff explains most.
_REASON_ORDER = {r: i for i, r in enumerate(("model", "low_confidence", "llm_error", "repeated"))}
REPRESENTATIVES = 5  # messages searched for the closest entry, and shown first
_DEFAULT = object()


@dataclass
class GapMessage:
    text: str  # already scrubbed of personal data
    language: str  # ISO code or "" if unknown
    reason: str  # low_confidence | llm_error | ungrounded | model | negative_feedback | repeated
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


@dataclass
class _Raw:
    message_id: int
    chat_id: int
    text: str
    at: str
    reason: str
    ticket_id: int | None


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
    raw = await _collect(services, since)
    if not raw:
        return []
    raw = raw[-gap_clusters.MAX_MESSAGES :]
    names, hints = await _customers(services, {r.chat_id for r in raw})
    texts = [scrub(r.text, names.get(r.chat_id, ())) for r in raw]
    sentence_model = load_model() if model is _DEFAULT else model
    groups, similarities = await _group(texts, sentence_model)
    staff = await _staff_answers(services, {r.ticket_id for r in raw if r.ticket_id}, names)
    knowledge = services.knowledge.current
    taken = {entry.id for entry in knowledge.faq.entries}
    faq_language = main_language(entry.question for entry in knowledge.faq.entries)
    result = []
    for members in groups:
        ordered = gap_clusters.centre_order(similarities, members)
        messages = [
            GapMessage(
                texts[i],
                detect_language(texts[i], hints.get(raw[i].chat_id, "")) or "",
                raw[i].reason,
                raw[i].at,
                raw[i].ticket_id,
                raw[i].chat_id,
            )
            for i in ordered
        ]
        tickets = list(dict.fromkeys(m.ticket_id for m in messages if m.ticket_id))
        answers = list(dict.fromkeys(a for t in tickets for a in staff.get(t, [])))
        closest = await _closest_faq(services, [m.text for m in messages[:REPRESENTATIVES]])
        group = GapGroup(
            size=len(messages),
            customers=len({m.chat_id for m in messages}),
            messages=messages,
            languages=[
                code
                for code, _ in Counter(m.language for m in messages if m.language).most_common()
            ],
            closest_faq=closest,
            staff_answers=answers,
            draft={},
            last_seen=max(m.at for m in messages),
            reasons=dict(Counter(m.reason for m in messages).most_common()),
        )
        group.draft = make_draft(group, taken, faq_language)
        taken.add(group.draft["id"])
        result.append(group)
    result.sort(key=lambda g: g.last_seen, reverse=True)
    result.sort(key=lambda g: g.customers, reverse=True)
    return result


async def _collect(services: Services, since: str | None) -> list[_Raw]:
    """One row per customer question that went unanswered, oldest first."""
    rows = await services.db.fetchall(_GAP_QUERY, {"since": since or ""})
    found: dict[int, _Raw] = {}
    for row in rows:
        text = (row["q_text"] or "").strip()
        if not text or text.startswith("/"):
            continue
        reason = _reason(row)
        ticket = row["handoff_ticket"] or row["later_ticket"]
        known = found.get(row["q_id"])
        if known is None:
            found[row["q_id"]] = _Raw(
                row["q_id"], row["chat_id"], text, row["q_at"], reason, ticket
            )
        elif _rank(reason) < _rank(known.reason):
            known.reason = reason
            known.ticket_id = known.ticket_id or ticket
    return sorted(found.values(), key=lambda r: r.message_id)


def _reason(row: Any) -> str:
    if row["escalation_reason"] in _ESCALATION_GAPS:
        return str(row["escalation_reason"])
    if row["unhelpful"]:
        return "negative_feedback"
    return "ungrounded"


def _rank(reason: str) -> int:
    return _REASON_ORDER.get(reason, len(_REASON_ORDER))


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


# Each bot answer that shows a gap, with the customer message it answered: the
# customer's latest message before it in the same conversation. An answer given
# with no FAQ entry in the model's prompt has no ``<faq id=`` in its stored request.
_GAP_QUERY = """
    SELECT b.id AS answer_id, b.chat_id, b.ticket_id AS handoff_ticket,
           a.escalation_reason,
           EXISTS (SELECT 1 FROM feedback f WHERE f.message_id = b.id AND f.helpful = 0)
               AS unhelpful,
           q.id AS q_id, q.text AS q_text, q.created_at AS q_at,
           (SELECT h.ticket_id FROM messages h WHERE h.conversation_id = q.conversation_id
              AND h.id > q.id AND h.ticket_id IS NOT NULL ORDER BY h.id LIMIT 1) AS later_ticket
    FROM messages b
    JOIN answers a ON a.message_id = b.id
    JOIN messages q ON q.id = (
        SELECT MAX(x.id) FROM messages x
        WHERE x.conversation_id = b.conversation_id AND x.role = 'customer' AND x.id < b.id
    )
    WHERE b.role = 'bot' AND q.created_at >= :since AND (
        a.escalation_reason IN ('low_confidence', 'llm_error', 'model', 'repeated')
        OR (a.path = 'llm' AND b.ticket_id IS NULL AND a.request_json IS NOT NULL
            AND instr(a.request_json, '<faq id=') = 0)
        OR EXISTS (SELECT 1 FROM feedback f WHERE f.message_id = b.id AND f.helpful = 0)
    )
    ORDER BY b.id
"""
