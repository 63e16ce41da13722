"""What a customer asks of the bot besides a question: the commands and the buttons.

Start, help, a fresh start, a person, withdrawing or keeping a request, rating
an answer or a ticket, and deleting their messages: each decided here and
given back as an ``Outcome`` for the door to send, so the terminal and Telegram
do exactly the same. Part of ``SupportCore``, which supplies the parts below.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.outcome import FORGET_PREFIX, KEEP_BUTTON, WITHDRAW_BUTTON, Button, Outcome, Path, Reply
from bot.privacy import forget_chat
from bot.reasons import Reason
from bot.store.conversations import AnswerAudit, Customer

if TYPE_CHECKING:
    from bot.customer_language import SpokenLanguages
    from bot.escalation import Escalation
    from bot.escalation_policy import EscalationPolicy
    from bot.knowledge.live import KnowledgeBase
    from bot.knowledge.persona import Persona
    from bot.outcome import Incoming, StaffDesk
    from bot.replies import Replies
    from bot.store.conversations import ConversationStore
    from bot.store.inbox import ReplyJournal
    from bot.store.tickets import TicketStore

log = logging.getLogger("bot.core")


class CustomerActions:
    knowledge: KnowledgeBase
    conversations: ConversationStore
    tickets: TicketStore
    desk: StaffDesk | None
    policy: EscalationPolicy
    escalation: Escalation
    replies: Replies
    languages: SpokenLanguages
    if TYPE_CHECKING:

        async def handle(self, incoming: Incoming, **kwargs) -> Outcome: ...  # SupportCore's

    def _persona(self, customer: Customer) -> Persona:
        """The persona speaking the customer's language, as far as it is known."""
        return self.knowledge.current.persona.speaking(self.languages.of(customer))

    async def _notice(self, customer: Customer, key: str, **values) -> Outcome:
        persona = self._persona(customer)
        return await self.replies.say(customer, persona.message(key, **values), Path.NOTICE)

    async def start(self, customer: Customer) -> Outcome:
        await self.conversations.upsert_customer(customer)
        first_name = customer.first_name or customer.display_name
        return await self._notice(customer, "start", first_name=first_name)

    async def help(self, customer: Customer) -> Outcome:
        await self.conversations.upsert_customer(customer)
        return await self._notice(customer, "help")

    async def reset(self, customer: Customer) -> Outcome:
        """Start a fresh conversation: the model no longer sees earlier turns.

        With a request open, a fresh start would leave it waiting unseen by the
        customer, so they are asked whether to withdraw it instead."""
        await self.conversations.upsert_customer(customer)
        ticket = await self.tickets.open_for_chat(customer.chat_id)
        if ticket is not None and self.desk is not None:
            persona = self._persona(customer)
            buttons = (
                Button(persona.message("withdraw_button"), WITHDRAW_BUTTON),
                Button(persona.message("keep_button"), KEEP_BUTTON),
            )
            text = persona.message("reset_ticket_open", ticket_id=ticket.id)
            return await self.replies.say(customer, text, Path.NOTICE, buttons, ticket_id=ticket.id)
        await self.conversations.end_conversation(customer.chat_id, "reset")
        return await self._notice(customer, "reset")

    async def request_human(self, customer: Customer, reason: str = Reason.USER_REQUEST) -> Outcome:
        await self.conversations.upsert_customer(customer)
        return await self.escalation.escalate(customer, reason)

    async def withdraw(self, customer: Customer) -> Outcome:
        """/cancel or the handoff message's button: take back a request nobody has taken.

        Once a person has claimed or answered it the customer is told so, truthfully,
        and the ticket stays; staff close it. A withdrawn ticket ends the conversation,
        so the bot answers the next question fresh.
        """
        await self.conversations.upsert_customer(customer)
        persona = self._persona(customer)
        ticket = await self.tickets.open_for_chat(customer.chat_id)
        if ticket is None:
            return await self._notice(customer, "withdraw_nothing")
        if not await self.tickets.withdraw(ticket.id, f"customer:{customer.chat_id}"):
            text = persona.message("withdraw_refused", ticket_id=ticket.id)
            return await self.replies.say(customer, text, Path.NOTICE, ticket_id=ticket.id)
        log.info("ticket #%s withdrawn by chat %s", ticket.id, customer.chat_id)
        await self.conversations.end_conversation(customer.chat_id, "ticket_withdrawn")
        note = persona.staff_message("withdrawn", ticket_id=ticket.id)
        await self.escalation.end_at_desk(ticket, note)
        return await self._notice(customer, "withdrawn", ticket_id=ticket.id)

    async def keep(self, customer: Customer) -> Outcome:
        """Asked on /reset, the customer keeps their request open."""
        await self.conversations.upsert_customer(customer)
        ticket = await self.tickets.open_for_chat(customer.chat_id)
        if ticket is None:
            return await self._notice(customer, "withdraw_nothing")
        text = self._persona(customer).message("request_kept", ticket_id=ticket.id)
        return await self.replies.say(customer, text, Path.NOTICE, ticket_id=ticket.id)

    async def feedback(self, customer: Customer, message_id: int, helpful: bool) -> Outcome:
        """A 👍/👎 press. Only the chat the answer was sent to may rate it."""
        owner = await self.conversations.message_chat(message_id)
        if owner is None or owner != (customer.chat_id, "bot"):
            return Outcome(path=Path.IGNORED)
        await self.conversations.add_feedback(message_id, customer.chat_id, helpful)
        if not helpful:
            unhelpful = await self.conversations.unhelpful_in_conversation(customer.chat_id)
            reason = self.policy.on_feedback(unhelpful)
            if reason is not None:
                return await self.escalation.escalate(customer, reason)
        persona = self._persona(customer)
        return Outcome([Reply(persona.message("feedback_thanks"))], path=Path.NOTICE)

    async def rate_ticket(self, customer: Customer, ticket_id: int, rating: int) -> Outcome:
        """A rating of a closed ticket, kept only from the ticket's own customer; the
        reply is a short thanks (a toast on Telegram), not a message."""
        if not await self.tickets.rate(ticket_id, customer.chat_id, rating):
            return Outcome(path=Path.IGNORED)
        persona = self._persona(customer)
        return Outcome([Reply(persona.message("rating_thanks"))], path=Path.NOTICE)

    def ask_forget(self, customer: Customer) -> Outcome:
        """/forget asks first; the buttons carry no ids, so a press acts on its own chat."""
        persona = self._persona(customer)
        buttons = (Button("✅", f"{FORGET_PREFIX}:yes"), Button("✖️", f"{FORGET_PREFIX}:no"))
        return Outcome([Reply(persona.message("forget_confirm"), buttons)], path=Path.NOTICE)

    async def forget(
        self, customer: Customer, confirmed: bool, keep_update_id: int | None = None
    ) -> Outcome:
        """The answer to /forget: close an open ticket (telling staff), then delete the
        chat's text. Nothing of it is stored, not even the reply. ``keep_update_id``:
        the door's own record of the confirmation (``bot.privacy.forget_chat``)."""
        persona = self._persona(customer)
        if not confirmed:
            return Outcome([Reply(persona.message("forget_cancelled"))], path=Path.NOTICE)
        chat_id = customer.chat_id
        ticket = await self.tickets.open_for_chat(chat_id)
        if ticket is not None and await self.tickets.resolve(ticket.id, f"customer:{chat_id}"):
            note = persona.staff_message("forgotten", ticket_id=ticket.id)
            await self.escalation.end_at_desk(ticket, note)
        await self.conversations.end_conversation(chat_id, "forget")
        await forget_chat(self.conversations.db, chat_id, keep_update_id=keep_update_id)
        self.conversations.forget_known(chat_id)
        self.languages.forget(chat_id)
        return Outcome([Reply(persona.message("forget_done"))], path=Path.NOTICE)

    async def choose(self, customer: Customer, language: str, entry_id: str) -> Outcome:
        """The customer picked one of the entries offered when the bot was unsure: its
        answer, in the language they wrote in when the FAQ has it. The pick is stored as
        their message (the entry's question), so a follow-up is read with it. While people
        handle the chat, an old button does nothing: the bot stays out of it."""
        ticket = await self.tickets.open_for_chat(customer.chat_id)
        if ticket is not None and self.desk is not None:
            return Outcome(path=Path.IGNORED)
        knowledge = self.knowledge.current
        entry = knowledge.faq.by_id(entry_id)
        await self.conversations.upsert_customer(customer)
        if entry is None:  # taken out of the FAQ since it was offered
            return await self._notice(customer, "choice_gone")
        await self.conversations.add_message(
            customer.chat_id, "customer", entry.question_in(language or None), kind="choice"
        )
        audit = AnswerAudit(
            path=Path.FAQ,
            faq_ids=(entry.id,),
            faq_confidence=None,
            knowledge_version=knowledge.version,
        )
        buttons = self.replies.answer_buttons(knowledge, offer=False)
        answer = entry.answer_in(language or None).strip()
        return await self.replies.say(customer, answer, Path.FAQ, buttons, audit)

    async def edited(self, incoming: Incoming, journal: ReplyJournal | None = None) -> Outcome:
        """An edit is not a new question: said once instead of answering twice. Waiting
        on a person, the customer's correction goes to staff like any message."""
        ticket = await self.tickets.open_for_chat(incoming.customer.chat_id)
        if ticket is not None and self.desk is not None:
            return await self.handle(incoming, journal=journal)
        persona = self._persona(incoming.customer)
        return Outcome([Reply(persona.message("edited_ignored"))], path=Path.NOTICE)
