"""Carrying out a handoff: open or join the customer's ticket, tell staff, tell the customer.

Whether to hand over is ``bot.escalation_policy``'s call; this module only does it,
the same way for every reason, and says the truth about who will answer.
"""

from __future__ import annotations

import dataclasses
import logging

from bot.customer_language import SpokenLanguages
from bot.knowledge.faq import SearchResult
from bot.knowledge.live import Knowledge, KnowledgeBase
from bot.outcome import WITHDRAW_BUTTON, Button, Incoming, Outcome, Path, StaffDesk, TicketContext
from bot.prompt import Turn
from bot.reasons import Reason
from bot.replies import Replies
from bot.store.conversations import AnswerAudit, ConversationStore, Customer
from bot.store.tickets import Ticket, TicketStore, summary_of

log = logging.getLogger("bot.core")


class Escalation:
    def __init__(
        self,
        knowledge: KnowledgeBase,
        conversations: ConversationStore,
        tickets: TicketStore,
        desk: StaffDesk | None,
        replies: Replies,
        languages: SpokenLanguages,
    ):
        self.knowledge = knowledge
        self.languages = languages
        self.conversations = conversations
        self.tickets = tickets
        self.desk = desk
        self.replies = replies

    async def escalate(
        self,
        customer: Customer,
        reason: str,
        summary: str | None = None,
        knowledge: Knowledge | None = None,
        matches: tuple[SearchResult, ...] = (),
        audit: AnswerAudit | None = None,
    ) -> Outcome:
        """Open or join the customer's ticket, tell staff, and tell the customer the truth."""
        knowledge = knowledge or self.knowledge.current.speaking(self.languages.of(customer))
        history = await self.conversations.history(customer.chat_id, 10)
        turns = tuple(Turn(m.role, m.text or f"[{m.kind}]") for m in history)
        if not summary:
            summary = summary_of([t.text for t in turns if t.role == "customer"]) or reason
        ticket, created = await self.tickets.open_or_join(
            customer.chat_id, customer.user_id, reason, summary, f"customer:{customer.chat_id}"
        )
        log.info(
            "ticket #%s %s for chat %s (%s)",
            ticket.id,
            "opened" if created else "joined",
            customer.chat_id,
            reason,
        )
        if self.desk is not None:
            try:
                if created:
                    writes_in = self.languages.of_chat(customer.chat_id) or ""
                    context = TicketContext(customer, reason, summary, turns, matches, writes_in)
                    await self.desk.ticket_opened(ticket, context)
                else:
                    await self.desk.ticket_escalated_again(ticket, reason)
            except Exception:
                # The ticket is stored either way; staff see it in /tickets.
                log.exception("could not post ticket #%s to the staff group", ticket.id)
        audit = dataclasses.replace(
            audit
            or AnswerAudit(
                path=Path.HANDOFF,
                faq_ids=tuple(m.id for m in matches),
                knowledge_version=knowledge.version,
            ),
            escalation_reason=reason,
        )
        persona = knowledge.persona
        buttons: tuple[Button, ...] = ()
        if self.desk is not None and ticket.status == "open":
            buttons = (Button(persona.message("withdraw_button"), WITHDRAW_BUTTON),)
        text = self._handoff_text(persona, created, reason, ticket.id)
        outcome = await self.replies.say(
            customer, text, Path.HANDOFF, buttons, audit, ticket_id=ticket.id
        )
        outcome.ticket = ticket
        return outcome

    def _handoff_text(self, persona, created: bool, reason: str, ticket_id: int) -> str:
        """With no staff chat nobody can reply in this one, so the text says how to
        reach people; with no answer found, it says that first."""
        desk = self.desk is not None
        if not created:
            key = "handoff_joined" if desk else "handoff_joined_unavailable"
        elif reason == Reason.LLM_ERROR:
            key = "llm_failed" if desk else "llm_failed_unavailable"
        else:
            key = "handoff_opened" if desk else "handoff_unavailable"
        text = persona.message(key, ticket_id=ticket_id)
        if reason == Reason.LOW_CONFIDENCE and created:
            no_answer = "no_answer" if desk else "no_answer_unavailable"
            text = persona.message(no_answer) + "\n\n" + text
        return text

    async def upgrade(self, ticket: Ticket, incoming: Incoming, reason: Reason | None) -> Ticket:
        """The ticket takes the stronger ``reason`` (staff triage by it); the message
        itself is relayed as usual."""
        if reason is None or self.desk is None:
            return ticket
        chat_id = incoming.customer.chat_id
        ticket, _ = await self.tickets.open_or_join(
            chat_id, incoming.customer.user_id, reason, None, f"customer:{chat_id}"
        )
        await self.desk.ticket_escalated_again(ticket, reason)
        return ticket

    async def end_at_desk(self, ticket: Ticket, note: str) -> None:
        """The ticket ended on the customer's side: staff read why where they work on it."""
        if self.desk is None:
            return
        try:
            await self.desk.ticket_ended(ticket, note)
        except Exception:  # resolved either way; staff see it in /tickets
            log.exception("could not tell staff that ticket #%s ended", ticket.id)
