"""The conversation core: what to do with one customer message, with no Telegram in sight.

The Telegram adapter and the terminal both turn their input into ``Incoming``
and plain calls, and act on the ``Outcome``; every decision about a customer
(answer, escalate, relay, withdraw, rate, forget) is made here or in a policy
module called from here, so it is the same whichever door the customer used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.answers import Answers, ModelHandoff, Question
from bot.context_budget import ContextBudget
from bot.customer_actions import CustomerActions
from bot.customer_language import SpokenLanguages
from bot.customer_messages import CustomerMessages
from bot.errors import LLMError
from bot.escalation import Escalation
from bot.escalation_policy import EscalationPolicy
from bot.knowledge.faq import SearchResult
from bot.knowledge.live import Knowledge, KnowledgeBase
from bot.llm import LLMClient
from bot.media import MediaHandler, Prepared
from bot.outcome import (
    HUMAN_BUTTON,
    Button,
    DoneCallback,
    Incoming,
    LaterCallback,
    Outcome,
    Path,
    Reply,
    Retriever,
    StaffDesk,
    StreamCallback,
)
from bot.person_request import PersonRequests
from bot.prompt import Turn
from bot.rate_limit import CustomerRateLimit
from bot.reasons import Reason
from bot.replies import Replies
from bot.settings import Settings
from bot.small_talk import SmallTalk, phrase_kind
from bot.store.conversations import ConversationStore, StoredMessage
from bot.store.inbox import ReplyJournal
from bot.store.tickets import Ticket, TicketStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _PutOff:
    """A message over the customer's rate limit, stored, waiting to be answered."""

    incoming: Incoming
    stored_id: int
    later: LaterCallback | None


class SupportCore(CustomerActions):
    def __init__(
        self,
        settings: Settings,
        knowledge: KnowledgeBase,
        conversations: ConversationStore,
        tickets: TicketStore,
        llm: LLMClient | None,
        desk: StaffDesk | None = None,
        semantic: Retriever | None = None,
        person_requests: PersonRequests | None = None,
        media: MediaHandler | None = None,
        small_talk: SmallTalk | None = None,
    ):
        self.settings = settings
        self.knowledge = knowledge
        self.conversations = conversations
        self.tickets = tickets
        self.llm = llm
        self.desk = desk
        self.person_requests = person_requests or PersonRequests(None)
        self.small_talk = small_talk or SmallTalk(None)
        self.budget = ContextBudget(llm, settings.llm.context_tokens) if llm else None
        self.media = media or MediaHandler(settings)
        self.policy = EscalationPolicy(settings.escalation, self.person_requests)
        self.customer_messages = CustomerMessages(
            conversations, settings.conversation.history_messages
        )
        self.replies = Replies(settings, conversations)
        self.languages = SpokenLanguages(conversations)
        self.escalation = Escalation(
            knowledge, conversations, tickets, desk, self.replies, self.languages
        )
        self.answers = Answers(settings, self.budget, semantic, self.replies)
        self.rate_limit: CustomerRateLimit[_PutOff] = CustomerRateLimit(
            settings.conversation.rate_limit_per_minute, self._answer_put_off
        )

    async def retrieve(
        self, knowledge: Knowledge, text: str, top_k: int, previous: str | None = None
    ) -> list[SearchResult]:
        """The FAQ matches for a message (``bot.answers``)."""
        return await self.answers.retrieve(knowledge, text, top_k, previous)

    async def handle(
        self,
        incoming: Incoming,
        on_text: StreamCallback | None = None,
        on_done: DoneCallback | None = None,
        later: LaterCallback | None = None,
        stored_id: int | None = None,
        journal: ReplyJournal | None = None,
    ) -> Outcome:
        """Answer one message. ``on_text`` gets the model's text as it is written;
        ``on_done`` is called once the answer is complete, before it is stored, so a
        preview does not start for an answer about to be sent whole. Over the rate
        limit a message is stored and answered later, in order, through ``later``
        (without one, after waiting here); a request for a person never waits.
        ``stored_id``: stored already when it was put off. ``journal``: the update's,
        for what the core sends itself. Handled again after a crash, the message is
        not stored twice: the store gives the same row back."""
        chat_id = incoming.customer.chat_id
        ticket = await self.tickets.open_for_chat(chat_id)
        if ticket is not None and self.desk is not None:
            return await self._relay(ticket, incoming, stored_id, journal)
        if stored_id is None and self.rate_limit.holds_back(chat_id):
            await self.conversations.upsert_customer(incoming.customer)
            stored_id = await self.customer_messages.store(incoming)
            reason = await self.policy.while_limited(incoming.text or "")
            if reason is not None:
                outcome = await self.escalation.escalate(incoming.customer, reason)
                await self._hand_over_put_off(chat_id, outcome.ticket)
                return outcome
            if later is not None:
                language = self.languages.heard(incoming.customer, incoming.text or "")
                persona = self.knowledge.current.persona.speaking(language)
                if not self.rate_limit.defer(chat_id, _PutOff(incoming, stored_id, later)):
                    return Outcome(path=Path.DEFERRED, answered_later=True)
                reply = Reply(persona.message("rate_limited"))
                return Outcome([reply], path=Path.NOTICE, answered_later=True)
            await self.rate_limit.wait_for_room(chat_id)  # nobody to answer later for
        return await self._answer(incoming, on_text, on_done, stored_id)

    async def _relay(
        self,
        ticket: Ticket,
        incoming: Incoming,
        stored_id: int | None,
        journal: ReplyJournal | None,
    ) -> Outcome:
        """A customer with an open ticket talks to people: the message goes to staff."""
        assert self.desk is not None
        incoming = await self.media.for_staff(incoming)
        await self.conversations.upsert_customer(incoming.customer)
        if stored_id is None:
            await self.customer_messages.store(incoming, ticket.id)
        else:  # put off before the ticket opened: it belongs to the ticket now
            await self.conversations.attach_to_ticket([stored_id], ticket.id)
        upgrade = self.policy.upgrade(incoming.text or "", ticket.reason)
        ticket = await self.escalation.upgrade(ticket, incoming, upgrade)
        await self.desk.relay_from_customer(ticket, incoming, journal)
        return Outcome(path=Path.RELAY, ticket=ticket)

    async def _answer(
        self,
        incoming: Incoming,
        on_text: StreamCallback | None,
        on_done: DoneCallback | None,
        stored_id: int | None,
    ) -> Outcome:
        customer = incoming.customer
        prepared = await self.media.prepare(incoming)  # caption or transcript, or a notice
        incoming = prepared.incoming
        # One version for the whole message, its texts in the customer's language.
        language = self.languages.heard(customer, incoming.text or "")
        knowledge = self.knowledge.current.speaking(language)
        persona = knowledge.persona
        if prepared.notice is not None:
            await self.conversations.upsert_customer(customer)
            await self.customer_messages.store(incoming)
            button = Button(persona.message("talk_to_person_button"), HUMAN_BUTTON)
            text = prepared.notice_text(persona)
            return await self.replies.say(customer, text, Path.NOTICE, (button,))
        text, notices = self._within_limits(incoming.text or "", prepared)
        history = await self.customer_messages.take(incoming, stored_id)
        return await self._decide(
            incoming, knowledge, text, history, prepared, notices, on_text, on_done
        )

    async def _decide(
        self,
        incoming: Incoming,
        knowledge: Knowledge,
        text: str,
        history: list[StoredMessage],
        prepared: Prepared,
        notices: list[Reply],
        on_text: StreamCallback | None,
        on_done: DoneCallback | None,
    ) -> Outcome:
        """Hand over, chat back, answer from the model or the FAQ: the first that applies.

        ``notices`` (the message was cut, only its caption was read) come before
        what answers the message itself; a handoff asked for in words says enough."""
        customer = incoming.customer
        escalate = self.escalation.escalate

        def noted(outcome: Outcome) -> Outcome:
            outcome.replies[:0] = notices
            return outcome

        reason = self.policy.on_words(text)
        if reason is not None:
            return await escalate(customer, reason, None, knowledge)
        previous = _previous_question(history)
        by_meaning = not self.answers.words_decide(knowledge, text, previous)
        kind = await self.small_talk.classify(text, by_meaning)
        if kind is not None:
            chatted = await self.answers.chat_back(customer, knowledge, kind, history)
            if chatted is not None:
                return noted(chatted)
        reason = self.policy.on_repeat(text, history)
        if reason is not None:
            return await escalate(customer, reason, None, knowledge)
        top_k, threshold = (
            self.settings.retrieval.top_k,
            self.settings.retrieval.confidence_threshold,
        )
        found = await self.retrieve(knowledge, text, top_k, previous)
        matches = tuple(found)
        clear = bool(matches) and matches[0].confidence >= threshold
        reason = await self.policy.on_unclear_match(text, clear)
        if reason is not None:
            return await escalate(customer, reason, None, knowledge, matches)
        turns = [Turn(m.role, m.text or "") for m in history if m.text]
        offer = self.policy.offers_person(text)
        question = Question(
            customer, knowledge, text, matches, turns, offer, prepared.image_parts()
        )
        return noted(await self._answer_question(question, on_text, on_done))

    async def _answer_question(
        self, question: Question, on_text: StreamCallback | None, on_done: DoneCallback | None
    ) -> Outcome:
        """The model's answer; the FAQ's when there is no model or it fails; without a
        model and a clear match, likely entries to pick from; else a person."""
        customer, knowledge, matches = question.customer, question.knowledge, question.matches
        llm_failed = False
        if self.budget is not None:
            try:
                answer = await self.answers.from_model(question, on_text, on_done)
            except LLMError as error:
                log.warning("model answer failed for chat %s: %s", customer.chat_id, error)
                llm_failed = True
            else:
                if not isinstance(answer, ModelHandoff):
                    return answer
                return await self.escalation.escalate(
                    customer, Reason.MODEL, answer.summary, knowledge, matches, answer.audit
                )
        faq_answer = await self.answers.from_faq(question)
        if faq_answer is not None:
            return faq_answer
        if not llm_failed:
            choices = await self.answers.offer_choices(question)
            if choices is not None:
                return choices
        reason = self.policy.without_answer(llm_failed)
        return await self.escalation.escalate(customer, reason, None, knowledge, matches)

    def _within_limits(self, text: str, prepared: Prepared) -> tuple[str, list[Reply]]:
        """The text the core works on, and what to tell the customer about it first."""
        persona = self.knowledge.current.persona
        notices = [Reply(persona.message(prepared.warning))] if prepared.warning else []
        limit = self.settings.conversation.max_input_chars
        if len(text) > limit:
            text = text[:limit]
            notices.append(Reply(persona.message("message_truncated")))
        return text, notices

    async def _answer_put_off(self, put_off: _PutOff) -> None:
        outcome = await self.handle(put_off.incoming, stored_id=put_off.stored_id)
        if put_off.later is not None:
            await put_off.later(outcome)

    async def _hand_over_put_off(self, chat_id: int, ticket: Ticket | None) -> None:
        """Messages still waiting when the customer asks for a person are part of the
        ticket: its card shows them as the last messages, so staff have them at once."""
        if ticket is None or self.desk is None:
            return
        waiting = self.rate_limit.take_deferred(chat_id)
        if waiting:
            await self.conversations.attach_to_ticket([p.stored_id for p in waiting], ticket.id)


def _previous_question(history: list[StoredMessage]) -> str | None:
    """The customer's last message in this conversation, for reading a follow-up."""
    for message in reversed(history):
        if message.role == "customer" and message.text and phrase_kind(message.text) is None:
            return message.text
    return None
