"""Escalation reason codes, and which one wins when a ticket gets a second reason.

The codes are stored on tickets and events and read by outside tools, so they
never change; people see them through the readable names in ``persona.yaml``.
"""

from __future__ import annotations

# Strongest first: a ticket joined by a new escalation keeps the stronger reason.
# A phrase rule (chargeback, legal, safety) matters most for triage; a customer
# who asks for a person outranks every guess the bot made on its own.
REASON_CODES: tuple[str, ...] = (
    "keyword",
    "user_request",
    "negative_feedback",
    "repeated",
    "model",
    "unsupported_media",
    "llm_error",
    "low_confidence",
)


def rank(reason: str) -> int:
    """Lower is stronger; a code not listed here ranks below all known ones."""
    try:
        return REASON_CODES.index(reason)
    except ValueError:
        return len(REASON_CODES)


def outranks(new: str, current: str) -> bool:
    return rank(new) < rank(current)
