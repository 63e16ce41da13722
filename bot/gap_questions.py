"""Which customer questions show a knowledge gap, read from the stored answers.

The rules for what counts live here, apart from the grouping and drafting of
``bot.gaps``, because they are a question put to the database: which bot answers
show that the FAQ fell short, and which customer message each one answered.

What counts as a gap, by reason:

* ``low_confidence``, ``llm_error``: handed over because no entry matched well
  enough, or the model failed and no entry matched well enough either;
* ``model``: the model handed over itself (usually: the material did not cover it);
* ``repeated``: the customer asked the same thing again;
* ``choices``: with no model and no confident match, entries were offered to pick from;
* ``ungrounded``: the model answered, but no FAQ entry reached its prompt;
* ``negative_feedback``: an answer the customer rated 👎.

Hand-overs a customer asked for, phrase rules and media are not gaps: the FAQ
was not what failed there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.store.db import Database

REASONS = (
    "low_confidence",
    "llm_error",
    "ungrounded",
    "model",
    "negative_feedback",
    "repeated",
    "choices",
)
# Escalation reasons that mean the FAQ fell short (the rest: the customer asked, a rule).
_ESCALATION_GAPS = ("low_confidence", "llm_error", "model", "repeated")
# When one message is a gap for several reasons, the one shown: the handoff explains most.
_REASON_ORDER = {r: i for i, r in enumerate(("model", "low_confidence", "llm_error", "repeated"))}


@dataclass
class UnansweredQuestion:
    """A customer message the FAQ fell short on, as stored: not yet scrubbed."""

    message_id: int
    chat_id: int
    text: str
    at: str
    reason: str
    ticket_id: int | None


async def unanswered_questions(db: Database, since: str | None) -> list[UnansweredQuestion]:
    """One row per customer question that went unanswered, oldest first."""
    rows = await db.fetchall(_GAP_QUERY, {"since": since or ""})
    found: dict[int, UnansweredQuestion] = {}
    for row in rows:
        text = (row["q_text"] or "").strip()
        if not text or text.startswith("/"):
            continue
        reason = _reason(row)
        ticket = row["handoff_ticket"] or row["later_ticket"]
        known = found.get(row["q_id"])
        if known is None:
            found[row["q_id"]] = UnansweredQuestion(
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
    if row["path"] == "choices":
        return "choices"
    return "ungrounded"


def _rank(reason: str) -> int:
    return _REASON_ORDER.get(reason, len(_REASON_ORDER))


# Each bot answer that shows a gap, with the customer message it answered: the
# customer's latest message before it in the same conversation. An answer given
# with no FAQ entry in the model's prompt has no ``<faq id=`` in its stored request.
_GAP_QUERY = """
    SELECT b.id AS answer_id, b.chat_id, b.ticket_id AS handoff_ticket,
           a.escalation_reason, a.path,
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
        OR a.path = 'choices'
        OR (a.path = 'llm' AND b.ticket_id IS NULL AND a.request_json IS NOT NULL
            AND instr(a.request_json, '<faq id=') = 0)
        OR EXISTS (SELECT 1 FROM feedback f WHERE f.message_id = b.id AND f.helpful = 0)
    )
    ORDER BY b.id
"""
