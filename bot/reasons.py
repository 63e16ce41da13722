"""Escalation reason codes, and which one wins when a ticket gets a second reason.

The codes are stored on tickets and events and read by outside tools, so they
never change; people see them through the readable names in ``persona.yaml``.
``Reason`` is a ``StrEnum``: a member is its code, in the database and the logs alike.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Strongest first: a ticket joined by a new escalation keeps the stronger reason.

    A phrase rule (chargeback, legal, safety) matters most for triage; a customer
    who asks for a person outranks every guess the bot made on its own.
    """

    KEYWORD = "keyword"
    USER_REQUEST = "user_request"
    NEGATIVE_FEEDBACK = "negative_feedback"
    REPEATED = "repeated"
    MODEL = "model"
    UNSUPPORTED_MEDIA = "unsupported_media"
    LLM_ERROR = "llm_error"
    LOW_CONFIDENCE = "low_confidence"


REASON_CODES: tuple[str, ...] = tuple(reason.value for reason in Reason)


def rank(reason: str) -> int:
    """Lower is stronger; a code not listed here ranks below all known ones."""
    try:
        return REASON_CODES.index(reason)
    except ValueError:
        return len(REASON_CODES)


def outranks(new: str, current: str) -> bool:
    return rank(new) < rank(current)
