"""When a customer goes to a person: every rule in one place, each giving a ``Reason`` or None.

The core asks at each step of a message (what it says outright, how often it
was asked, how well the FAQ matched, whether any answer came, what feedback
said) and escalates with whatever reason comes back. A new kind of escalation
is a new ``Reason`` (``bot.reasons``), a rule here, its readable name in
``persona.yaml`` and a test.
"""

from __future__ import annotations

from bot.handoff import asks_for_person, fold_phrase, matching_rule
from bot.person_request import PersonRequests
from bot.reasons import Reason, outranks
from bot.settings import EscalationSettings
from bot.store.conversations import StoredMessage


class EscalationPolicy:
    def __init__(self, settings: EscalationSettings, person_requests: PersonRequests):
        self.settings = settings
        self.person_requests = person_requests

    def on_words(self, text: str) -> Reason | None:
        """What the message says outright: a request for a person, or a phrase rule
        (chargeback, legal, safety) that always hands over."""
        if asks_for_person(text, self.settings.handoff_phrases):
            return Reason.USER_REQUEST
        rule = matching_rule(text, self.settings.rules)
        if rule is not None and rule.action == "escalate":
            return Reason.KEYWORD
        return None

    def offers_person(self, text: str) -> bool:
        """A phrase rule that does not hand over but puts a "talk to a person" button
        under the answer."""
        rule = matching_rule(text, self.settings.rules)
        return rule is not None and rule.action == "offer"

    def on_repeat(self, text: str, history: list[StoredMessage]) -> Reason | None:
        """The same question again, as often as ``repeat_limit`` allows."""
        key = fold_phrase(text).strip(" ?!.")
        asked = sum(
            1
            for m in history
            if m.role == "customer" and m.text and fold_phrase(m.text).strip(" ?!.") == key
        )
        return Reason.REPEATED if asked >= self.settings.repeat_limit - 1 else None

    async def on_unclear_match(self, text: str, clear: bool) -> Reason | None:
        """No clear FAQ answer, and the words mean "a person, please" (by meaning)."""
        if not clear and await self.person_requests.asks_for_person(text):
            return Reason.USER_REQUEST
        return None

    async def while_limited(self, text: str) -> Reason | None:
        """An explicit request for a person, which no rate limit may hold back."""
        if asks_for_person(text, self.settings.handoff_phrases):
            return Reason.USER_REQUEST
        if await self.person_requests.asks_for_person(text):
            return Reason.USER_REQUEST
        return None

    @staticmethod
    def without_answer(llm_failed: bool) -> Reason:
        """Neither the model nor the FAQ could answer."""
        return Reason.LLM_ERROR if llm_failed else Reason.LOW_CONFIDENCE

    def on_feedback(self, unhelpful_in_conversation: int) -> Reason | None:
        if unhelpful_in_conversation >= self.settings.not_helpful_limit:
            return Reason.NEGATIVE_FEEDBACK
        return None

    def upgrade(self, text: str, current: str) -> Reason | None:
        """A customer waiting on a ticket who now asks for a person, or raises what the
        rules always hand over: the stronger reason the ticket takes, else None."""
        rule = matching_rule(text, self.settings.rules)
        if rule is not None and rule.action == "escalate":
            reason = Reason.KEYWORD
        elif asks_for_person(text, self.settings.handoff_phrases):
            reason = Reason.USER_REQUEST
        else:
            return None
        return reason if outranks(reason, current) else None
