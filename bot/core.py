"""The conversation core: what to do with one customer message, with no Telegram in sight.

The Telegram adapter and the terminal both turn their input into ``Incoming``
and act on the ``Outcome``; everything else (retrieval, the model, escalation,
storage) happens here, so it is the same whichever door the customer used.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.context_budget import ContextBudget, PromptParts
from bot.errors import LLMBadResponse, LLMError
from bot.handoff import asks_for_person, fold_phrase, matching_rule
from bot.handoff_marker import hiding_marker
from bot.images import without_images
from bot.knowledge.faq import SearchResult
from bot.knowledge.followup import search_in_context
from bot.knowledge.language import detect_language
from bot.knowledge.live import Knowledge, KnowledgeBase
from bot.llm import Completion, LLMClient
from bot.media import Attachment, MediaHandler
from bot.person_request import PersonRequests
from bot.prompt import ESCALATE_TOOL, Turn
from bot.reasons import outranks
from bot.settings import Settings
from bot.small_talk import ACK, EMOJI, FAREWELL, GIBBERISH, GREETING, THANKS, SmallTalk, phrase_kind
from bot.store.conversations import AnswerAudit, ConversationStore, Customer
from bot.store.inbox import current_journal
from bot.store.tickets import Ticket, TicketStore, summary_of

log = logging.getLogger(__name__)

# Callback data of the buttons the core asks for; the adapter passes them back verbatim.
HUMAN_BUTTON = "human"
FEEDBACK_PREFIX = "fb"
RATING_PREFIX = "rate"
WITHDRAW_BUTTON = "withdraw"  # the customer takes back a request nobody has taken yet
KEEP_BUTTON = "keep"  # ... or, asked on /reset, keeps it


@dataclass(frozen=True)
class Incoming:
    """One message from a customer, whatever the door. ``kind`` is 'text' or the media type;
    a photo's or file's caption is ``text``."""

    customer: Customer
    text: str | None
    kind: str = "text"
    message_id: int | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Button:
    label: str
    data: str


@dataclass
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()
    stored_id: int | None = None  # our messages.id, so the adapter can record Telegram's id
    markdown: bool = False  # an answer (model or FAQ) in Markdown, shown formatted


@dataclass
class Outcome:
    replies: list[Reply] = field(default_factory=list)
    path: str = "none"  # llm | faq | fallback | handoff | relay | notice | small_talk
    ticket: Ticket | None = None
    # The message itself is answered later, through the ``later`` callback of ``handle``:
    # a door with a durable inbox keeps it pending until then.
    answered_later: bool = False


@dataclass(frozen=True)
class TicketContext:
    """What staff see on a new ticket's card."""

    customer: Customer
    reason: str
    summary: str
    last_messages: tuple[Turn, ...]
    faq_matches: tuple[SearchResult, ...]


class Retriever(Protocol):
    """Re-ranks FAQ matches by meaning (``bot.knowledge.embeddings.SemanticSearch``)."""

    async def search(self, knowledge: Knowledge, query: str, top_k: int) -> list[SearchResult]: ...


class StaffDesk(Protocol):
    """Where tickets go to people: the Telegram staff group. None in the terminal."""

    async def ticket_opened(self, ticket: Ticket, context: TicketContext) -> None: ...

    async def ticket_escalated_again(self, ticket: Ticket, reason: str) -> None: ...

    async def ticket_ended(self, ticket: Ticket, note: str) -> None:
        """The ticket ended without staff (withdrawn, closed for silence): post the note
        in its place and close it."""
        ...

    async def relay_from_customer(self, ticket: Ticket, incoming: Incoming) -> None: ...


StreamCallback = Callable[[str], Awaitable[None]]
DoneCallback = Callable[[], None]
# Delivers the outcome of a message answered later, once the customer's rate limit allows.
LaterCallback = Callable[["Outcome"], Awaitable[None]]


class SupportCore:
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
        self.semantic = semantic  # matching by meaning, when switched on
        self.person_requests = person_requests or PersonRequests(None)
        self.small_talk = small_talk or SmallTalk(None)
        self.budget = ContextBudget(llm, settings.llm.context_tokens) if llm else None
        # open_services gives it transcription; the doors give it a fetcher.
        self.media = media or MediaHandler(settings)
        self._recent_messages: dict[int, deque[float]] = defaultdict(deque)
        self._rate_noticed: set[int] = set()
        # Messages over the per-customer limit wait here, in order, to be answered later.
        self._deferred: dict[int, deque[tuple[Incoming, int, LaterCallback | None]]] = {}
        self._draining: dict[int, asyncio.Task] = {}
        self._windows_swept_at = time.monotonic()
        self.rate_window_seconds = 60.0  # rate_limit_per_minute counts over this window

    # -- commands ---------------------------------------------------------------------

    async def start(self, customer: Customer) -> Outcome:
        await self.conversations.upsert_customer(customer)
        persona = self.knowledge.current.persona
        text = persona.message("start", first_name=customer.first_name or customer.display_name)
        return await self._say(customer, text, path="notice")

    async def help(self, customer: Customer) -> Outcome:
        await self.conversations.upsert_customer(customer)
        return await self._say(customer, self.knowledge.current.persona.message("help"), "notice")

    async def reset(self, customer: Customer) -> Outcome:
        """Start a fresh conversation: the model no longer sees earlier turns.

        With a request open, a fresh start would leave it waiting unseen by the
        customer, so they are asked whether to withdraw it instead."""
        await self.conversations.upsert_customer(customer)
        ticket = await self.tickets.open_for_chat(customer.chat_id)
        if ticket is not None and self.desk is not None:
            persona = self.knowledge.current.persona
            buttons = (
                Button(persona.message("withdraw_button"), WITHDRAW_BUTTON),
                Button(persona.message("keep_button"), KEEP_BUTTON),
            )
            text = persona.message("reset_ticket_open", ticket_id=ticket.id)
            return await self._say(customer, text, "notice", buttons, ticket_id=ticket.id)
        await self.conversations.end_conversation(customer.chat_id, "reset")
        return await self._say(customer, self.knowledge.current.persona.message("reset"), "notice")

    async def request_human(self, customer: Customer, reason: str = "user_request") -> Outcome:
        await self.conversations.upsert_customer(customer)
        return await self.escalate(customer, reason, summary=None, knowledge=None, matches=())

    async def withdraw(self, customer: Customer) -> Outcome:
        """/cancel or the handoff message's button: take back a request nobody has taken.

        Once a person has claimed or answered it the customer is told so, truthfully,
        and the ticket stays; staff close it. A withdrawn ticket ends the conversation,
        so the bot answers the next question fresh.
        """
        await self.conversations.upsert_customer(customer)
        persona = self.knowledge.current.persona
        ticket = await self.tickets.open_for_chat(customer.chat_id)
        if ticket is None:
            return await self._say(customer, persona.message("withdraw_nothing"), "notice")
        actor = f"customer:{customer.chat_id}"
        if not await self.tickets.withdraw(ticket.id, actor):
            text = persona.message("withdraw_refused", ticket_id=ticket.id)
            return await self._say(customer, text, "notice", ticket_id=ticket.id)
        log.info("ticket #%s withdrawn by chat %s", ticket.id, customer.chat_id)
        await self.conversations.end_conversation(customer.chat_id, "ticket_withdrawn")
        await self._end_at_desk(ticket, persona.staff_message("withdrawn", ticket_id=ticket.id))
        return await self._say(
            customer, persona.message("withdrawn", ticket_id=ticket.id), "notice"
        )

    async def keep(self, customer: Customer) -> Outcome:
        """Asked on /reset, the customer keeps their request open."""
        await self.conversations.upsert_customer(customer)
        ticket = await self.tickets.open_for_chat(customer.chat_id)
        persona = self.knowledge.current.persona
        if ticket is None:
            return await self._say(customer, persona.message("withdraw_nothing"), "notice")
        text = persona.message("request_kept", ticket_id=ticket.id)
        return await self._say(customer, text, "notice", ticket_id=ticket.id)

    async def _end_at_desk(self, ticket: Ticket, note: str) -> None:
        if self.desk is None:
            return
        try:
            await self.desk.ticket_ended(ticket, note)
        except Exception:  # resolved either way; staff see it in /tickets
            log.exception("could not tell staff that ticket #%s ended", ticket.id)

    async def feedback(self, customer: Customer, message_id: int, helpful: bool) -> Outcome:
        """A 👍/👎 press. Only the chat the answer was sent to may rate it."""
        owner = await self.conversations.message_chat(message_id)
        if owner is None or owner != (customer.chat_id, "bot"):
            return Outcome(path="ignored")
        await self.conversations.add_feedback(message_id, customer.chat_id, helpful)
        persona = self.knowledge.current.persona
        if not helpful:
            unhelpful = await self.conversations.unhelpful_in_conversation(customer.chat_id)
            if unhelpful >= self.settings.escalation.not_helpful_limit:
                return await self.escalate(
                    customer, "negative_feedback", summary=None, knowledge=None, matches=()
                )
        return Outcome([Reply(persona.message("feedback_thanks"))], path="notice")

    # -- messages ---------------------------------------------------------------------

    async def handle(
        self,
        incoming: Incoming,
        on_text: StreamCallback | None = None,
        on_done: DoneCallback | None = None,
        later: LaterCallback | None = None,
        stored_id: int | None = None,
    ) -> Outcome:
        """Answer one message. ``on_text`` gets the model's text as it is written;
        ``on_done`` is called as soon as the model's answer is complete, before it is
        stored, so that a preview does not start for an answer about to be sent whole.

        Over the customer's rate limit a message is stored and answered later, in
        order, through ``later`` (without one, after waiting here); the customer is told
        once. A request for a person never waits. ``stored_id`` marks a message
        stored already when it was put off.
        """
        customer = incoming.customer
        knowledge = self.knowledge.current  # one version for the whole message
        persona = knowledge.persona

        ticket = await self.tickets.open_for_chat(customer.chat_id)
        if ticket is not None and self.desk is not None:
            incoming = await self.media.for_staff(incoming)
            await self.conversations.upsert_customer(customer)
            if stored_id is None:
                await self.conversations.add_message(
                    customer.chat_id,
                    "customer",
                    incoming.text,
                    kind=incoming.kind,
                    telegram_message_id=incoming.message_id,
                    ticket_id=ticket.id,
                    attachments=incoming.attachments,
                )
            else:  # put off before the ticket opened: it belongs to the ticket now
                await self.conversations.db.execute(
                    "UPDATE messages SET ticket_id = ? WHERE id = ?", (ticket.id, stored_id)
                )
            ticket = await self._upgrade_on_request(ticket, incoming)
            await self.desk.relay_from_customer(ticket, incoming)
            return Outcome(path="relay", ticket=ticket)

        chat_id = customer.chat_id
        if stored_id is None and (self._deferred.get(chat_id) or self._over_rate_limit(chat_id)):
            await self.conversations.upsert_customer(customer)
            stored = await self._store_customer(incoming)
            if await self._asks_for_person_now(incoming.text or ""):
                outcome = await self.escalate(customer, "user_request", None, knowledge, ())
                await self._hand_over_deferred(chat_id, outcome.ticket)
                return outcome
            if later is None:  # nobody to answer later for: wait for the window here
                await asyncio.sleep(self._rate_wait(chat_id))
                self._take_rate_slot(chat_id)
                stored_id = stored
            else:
                self._defer(incoming, stored, later)
                if chat_id in self._rate_noticed:
                    return Outcome(path="deferred", answered_later=True)
                self._rate_noticed.add(chat_id)
                return Outcome(
                    [Reply(persona.message("rate_limited"))], path="notice", answered_later=True
                )

        prepared = await self.media.prepare(incoming)  # caption or transcript, or a notice
        incoming = prepared.incoming
        if prepared.notice is not None:
            await self.conversations.upsert_customer(customer)
            await self._store_customer(incoming)
            return await self._say(
                customer,
                prepared.notice_text(persona),
                path="notice",
                buttons=(Button(persona.message("talk_to_person_button"), HUMAN_BUTTON),),
            )

        text = incoming.text or ""
        notices = [Reply(persona.message(prepared.warning))] if prepared.warning else []
        limit = self.settings.conversation.max_input_chars
        if len(text) > limit:
            text = text[:limit]
            notices.append(Reply(persona.message("message_truncated")))
        history_limit = self.settings.conversation.history_messages
        journal = current_journal.get()
        if stored_id is not None:
            await self.conversations.upsert_customer(customer)
            history = await self.conversations.history(customer.chat_id, history_limit + 1)
            history = [m for m in history if m.id != stored_id][-history_limit:]
        elif journal is None or not journal.replay or incoming.message_id is None:
            # The usual case, in one trip to the database: customer, history, message.
            history = await self.conversations.take_customer_message(
                customer,
                incoming.text,
                kind=incoming.kind,
                telegram_message_id=incoming.message_id,
                history_limit=history_limit,
                attachments=incoming.attachments,
            )
        else:
            await self.conversations.upsert_customer(customer)
            history = await self.conversations.history(customer.chat_id, history_limit)
            earlier = await self._stored_before(incoming)
            if earlier is None:
                await self._store_customer(incoming)
            else:
                # Handled again after a crash: the message is already in the transcript,
                # and must not count as the customer asking the same thing twice.
                history = [m for m in history if m.id != earlier]
        esc = self.settings.escalation

        if asks_for_person(text, esc.handoff_phrases):
            return await self.escalate(customer, "user_request", None, knowledge, ())
        rule = matching_rule(text, esc.rules)
        if rule is not None and rule.action == "escalate":
            return await self.escalate(customer, "keyword", None, knowledge, ())
        kind = await self.small_talk.classify(text)
        if kind is not None:
            chatted = await self._chat_back(customer, persona, kind, history)
            if chatted is not None:
                chatted.replies[:0] = notices
                return chatted
        if self._asked_again(text, history) >= esc.repeat_limit - 1:
            return await self.escalate(customer, "repeated", None, knowledge, ())

        previous = _previous_question(history)
        matches = tuple(
            await self.retrieve(knowledge, text, self.settings.retrieval.top_k, previous)
        )
        clear = (
            bool(matches) and matches[0].confidence >= self.settings.retrieval.confidence_threshold
        )
        if not clear and await self.person_requests.asks_for_person(text):
            return await self.escalate(customer, "user_request", None, knowledge, matches)
        offer = rule is not None  # rule.action == "offer"
        turns = [Turn(m.role, m.text or "") for m in history if m.text]
        outcome = None
        llm_failed = False
        if self.llm is not None:
            try:
                outcome = await self._answer_with_llm(
                    customer,
                    knowledge,
                    matches,
                    turns,
                    text,
                    on_text,
                    offer,
                    on_done,
                    images=prepared.image_parts(),
                )
            except LLMError as error:
                log.warning("model answer failed for chat %s: %s", customer.chat_id, error)
                llm_failed = True
        if outcome is None:
            outcome = await self._answer_from_faq(
                customer, knowledge, matches, llm_failed, offer, text
            )
        outcome.replies[:0] = notices
        return outcome

    async def retrieve(
        self, knowledge: Knowledge, text: str, top_k: int, previous: str | None = None
    ) -> list[SearchResult]:
        """The FAQ matches for a message, by words and, when switched on, by meaning;
        a follow-up is also read with the question before it (``followup``)."""

        async def search(query: str, k: int) -> list[SearchResult]:
            return await self._search(knowledge, query, k)

        threshold = self.settings.retrieval.confidence_threshold
        return await search_in_context(search, text, previous, top_k, threshold)

    async def _search(self, knowledge: Knowledge, text: str, top_k: int) -> list[SearchResult]:
        if self.semantic is not None:
            return await self.semantic.search(knowledge, text, top_k)
        return knowledge.search(text, top_k)

    async def _answer_with_llm(
        self,
        customer: Customer,
        knowledge: Knowledge,
        matches: tuple[SearchResult, ...],
        turns: list[Turn],
        text: str,
        on_text: StreamCallback | None,
        offer: bool,
        on_done: DoneCallback | None = None,
        images: list[dict] | None = None,
    ) -> Outcome:
        assert self.budget is not None
        llm_settings = self.settings.llm
        conv = self.settings.conversation
        prompt = PromptParts(
            knowledge.persona,
            matches,
            turns,
            text,
            history_messages=conv.history_messages,
            history_chars=conv.history_chars,
            tools=llm_settings.use_tools,
            marker=llm_settings.escalation_marker,
            images=images or (),
        )
        tools = [ESCALATE_TOOL] if llm_settings.use_tools else None
        stream = on_text if llm_settings.streaming else None
        if stream is not None and not llm_settings.use_tools:
            stream = hiding_marker(stream, llm_settings.escalation_marker)
        try:
            completion, messages = await self.budget.complete(prompt, tools, stream)
        finally:
            if on_done is not None:
                on_done()
        audit = _audit("llm", completion, without_images(messages), matches, knowledge.version)
        handoff = _handoff_request(completion, llm_settings.escalation_marker)
        if handoff is not None:
            return await self.escalate(
                customer, "model", handoff or None, knowledge, matches, audit=audit
            )
        text = completion.text.strip()
        if not text:
            # Only a call to a tool we never offered: nothing to tell the customer,
            # so answer the way we would without the model.
            raise LLMBadResponse("the model answered with neither text nor a handoff")
        buttons = self._answer_buttons(knowledge, offer)
        return await self._say(customer, text, "llm", buttons, audit)

    async def _answer_from_faq(
        self,
        customer: Customer,
        knowledge: Knowledge,
        matches: tuple[SearchResult, ...],
        llm_failed: bool,
        offer: bool,
        text: str = "",
    ) -> Outcome:
        """FAQ-only mode, and the fallback when the model cannot answer: the entry's
        answer in the language the customer wrote in, when the FAQ has it."""
        threshold = self.settings.retrieval.confidence_threshold
        best = matches[0] if matches else None
        if best is not None and best.confidence >= threshold:
            audit = AnswerAudit(
                path="faq",
                faq_ids=tuple(m.id for m in matches),
                faq_confidence=best.confidence,
                knowledge_version=knowledge.version,
            )
            buttons = self._answer_buttons(knowledge, offer)
            language = detect_language(text, customer.language) if best.entry.answers else None
            answer = best.entry.answer_in(language).strip()
            return await self._say(customer, answer, "faq", buttons, audit)
        reason = "llm_error" if llm_failed else "low_confidence"
        return await self.escalate(customer, reason, None, knowledge, matches)

    async def _chat_back(
        self, customer: Customer, persona, kind: str, history: list
    ) -> Outcome | None:
        """The persona's reply to small talk, which is never a question to search for;
        None when the message should take the normal flow after all."""
        last_bot = next((m.text or "" for m in reversed(history) if m.role == "bot"), "")
        audit = AnswerAudit(path="small_talk", knowledge_version=self.knowledge.current.version)
        if kind == GIBBERISH:
            # Asked once already: perhaps it means something after all.
            rephrase = persona.message("rephrase")
            if last_bot.strip() == rephrase.strip():
                return None
            return await self._say(customer, rephrase, "small_talk", audit=audit)
        if kind == ACK and self.llm is not None and last_bot.rstrip().endswith("?"):
            return None  # "yes" answers the question the model just asked
        key = {
            GREETING: "small_talk_greeting",
            THANKS: "small_talk_thanks",
            FAREWELL: "small_talk_farewell",
            ACK: "small_talk_ack",
            EMOJI: "small_talk_ack",
        }[kind]
        return await self._say(customer, persona.message(key), "small_talk", audit=audit)

    # -- escalation ---------------------------------------------------------------------

    async def escalate(
        self,
        customer: Customer,
        reason: str,
        summary: str | None,
        knowledge: Knowledge | None,
        matches: tuple[SearchResult, ...],
        audit: AnswerAudit | None = None,
    ) -> Outcome:
        """Open or join the customer's ticket, tell staff, and tell the customer the truth."""
        knowledge = knowledge or self.knowledge.current
        persona = knowledge.persona
        history = await self.conversations.history(customer.chat_id, 10)
        turns = tuple(Turn(m.role, m.text or f"[{m.kind}]") for m in history)
        if not summary:
            summary = summary_of([t.text for t in turns if t.role == "customer"]) or reason
        ticket, created = await self.tickets.open_or_join(
            customer.chat_id,
            customer.user_id,
            reason,
            summary,
            actor=f"customer:{customer.chat_id}",
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
                    context = TicketContext(customer, reason, summary, turns, matches)
                    await self.desk.ticket_opened(ticket, context)
                else:
                    await self.desk.ticket_escalated_again(ticket, reason)
            except Exception:
                # The ticket is stored either way; staff see it in /tickets.
                log.exception("could not post ticket #%s to the staff group", ticket.id)
        text = persona.message(
            _handoff_message(created, reason, self.desk is not None), ticket_id=ticket.id
        )
        if reason == "low_confidence" and created:
            no_answer = "no_answer" if self.desk is not None else "no_answer_unavailable"
            text = persona.message(no_answer) + "\n\n" + text
        audit = dataclasses.replace(
            audit
            or AnswerAudit(
                path="handoff",
                faq_ids=tuple(m.id for m in matches),
                knowledge_version=knowledge.version,
            ),
            escalation_reason=reason,
        )
        buttons: tuple[Button, ...] = ()
        if self.desk is not None and ticket.status == "open":
            buttons = (Button(persona.message("withdraw_button"), WITHDRAW_BUTTON),)
        outcome = await self._say(customer, text, "handoff", buttons, audit, ticket_id=ticket.id)
        outcome.ticket = ticket
        return outcome

    async def _upgrade_on_request(self, ticket: Ticket, incoming: Incoming) -> Ticket:
        """A customer waiting on a ticket who now asks for a person, or raises what the
        rules always hand over (chargeback, legal, safety): the ticket takes that stronger
        reason, which staff triage by. The message itself is relayed as usual."""
        text = incoming.text or ""
        esc = self.settings.escalation
        rule = matching_rule(text, esc.rules)
        if rule is not None and rule.action == "escalate":
            reason = "keyword"
        elif asks_for_person(text, esc.handoff_phrases):
            reason = "user_request"
        else:
            return ticket
        if not outranks(reason, ticket.reason):
            return ticket
        chat_id = incoming.customer.chat_id
        ticket, _ = await self.tickets.open_or_join(
            chat_id, incoming.customer.user_id, reason, None, f"customer:{chat_id}"
        )
        assert self.desk is not None
        await self.desk.ticket_escalated_again(ticket, reason)
        return ticket

    # -- helpers ------------------------------------------------------------------------

    async def _say(
        self,
        customer: Customer,
        text: str,
        path: str,
        buttons: tuple[Button, ...] = (),
        audit: AnswerAudit | None = None,
        ticket_id: int | None = None,
    ) -> Outcome:
        stored = await self.conversations.add_message(
            customer.chat_id, "bot", text, audit=audit, ticket_id=ticket_id
        )
        if any(b.data == f"{FEEDBACK_PREFIX}:0" for b in buttons):
            buttons = tuple(
                Button(b.label, f"{b.data.split(':')[0]}:{stored}:{b.data.split(':')[1]}")
                if b.data.startswith(f"{FEEDBACK_PREFIX}:")
                else b
                for b in buttons
            )
        answer = path in ("llm", "faq")  # persona messages may hold a customer's name: plain
        return Outcome([Reply(text, buttons, stored, markdown=answer)], path=path)

    def _answer_buttons(self, knowledge: Knowledge, offer: bool) -> tuple[Button, ...]:
        buttons: list[Button] = []
        if self.settings.conversation.feedback_buttons:
            buttons += [Button("👍", f"{FEEDBACK_PREFIX}:1"), Button("👎", f"{FEEDBACK_PREFIX}:0")]
        if offer:
            buttons.append(Button(knowledge.persona.message("talk_to_person_button"), HUMAN_BUTTON))
        return tuple(buttons)

    async def _stored_before(self, incoming: Incoming) -> int | None:
        """The stored copy of a message handled again after a crash, else None."""
        journal = current_journal.get()
        if journal is None or not journal.replay or incoming.message_id is None:
            return None
        row = await self.conversations.db.fetchone(
            "SELECT id FROM messages WHERE chat_id = ? AND role = 'customer' "
            "AND telegram_message_id = ? ORDER BY id DESC LIMIT 1",
            (incoming.customer.chat_id, incoming.message_id),
        )
        return int(row["id"]) if row else None

    async def _store_customer(self, incoming: Incoming) -> int:
        return await self.conversations.add_message(
            incoming.customer.chat_id,
            "customer",
            incoming.text,
            kind=incoming.kind,
            telegram_message_id=incoming.message_id,
            attachments=incoming.attachments,
        )

    async def _asks_for_person_now(self, text: str) -> bool:
        """An explicit request for a person, which no limit may hold back."""
        if asks_for_person(text, self.settings.escalation.handoff_phrases):
            return True
        return await self.person_requests.asks_for_person(text)

    async def _hand_over_deferred(self, chat_id: int, ticket: Ticket | None) -> None:
        """Messages still waiting when the customer asks for a person are part of the
        ticket: its card shows them as the last messages, so staff have them at once."""
        queue = self._deferred.get(chat_id)
        if ticket is None or self.desk is None or not queue:
            return
        for _, stored, _ in queue:
            await self.conversations.db.execute(
                "UPDATE messages SET ticket_id = ? WHERE id = ?", (ticket.id, stored)
            )
        queue.clear()

    def _defer(self, incoming: Incoming, stored: int, later: LaterCallback) -> None:
        chat_id = incoming.customer.chat_id
        self._deferred.setdefault(chat_id, deque()).append((incoming, stored, later))
        if chat_id not in self._draining:
            task = asyncio.create_task(self._drain(chat_id))
            self._draining[chat_id] = task

    async def _drain(self, chat_id: int) -> None:
        """Answer a customer's put-off messages in order, as fast as their limit allows."""
        queue = self._deferred[chat_id]
        try:
            while queue:
                await asyncio.sleep(self._rate_wait(chat_id))
                if not self._take_rate_slot(chat_id):
                    continue
                incoming, stored, later = queue.popleft()
                try:
                    outcome = await self.handle(incoming, stored_id=stored)
                    if later is not None:
                        await later(outcome)
                except Exception:  # stored either way; the next message is still answered
                    log.exception("could not answer a put-off message of chat %s", chat_id)
        finally:
            self._deferred.pop(chat_id, None)
            self._draining.pop(chat_id, None)
            self._rate_noticed.discard(chat_id)

    def _forget_quiet_windows(self, now: float) -> None:
        """Drop the windows of customers quiet for a whole window, once a window.

        Otherwise every customer ever seen would keep one for the life of the process.
        """
        if now - self._windows_swept_at < self.rate_window_seconds:
            return
        self._windows_swept_at = now
        quiet = [
            chat
            for chat, window in self._recent_messages.items()
            if (not window or now - window[-1] > self.rate_window_seconds)
            and not self._deferred.get(chat)
        ]
        for chat in quiet:
            del self._recent_messages[chat]
            self._rate_noticed.discard(chat)

    def _rate_wait(self, chat_id: int) -> float:
        """Seconds until the customer's window has room for one more message."""
        limit = self.settings.conversation.rate_limit_per_minute
        window = self._recent_messages[chat_id]
        now = time.monotonic()
        while window and now - window[0] > self.rate_window_seconds:
            window.popleft()
        if limit <= 0 or len(window) < limit:
            return 0.0
        return self.rate_window_seconds - (now - window[0]) + 0.01

    def _take_rate_slot(self, chat_id: int) -> bool:
        if self._rate_wait(chat_id) > 0:
            return False
        self._recent_messages[chat_id].append(time.monotonic())
        return True

    def _over_rate_limit(self, chat_id: int) -> bool:
        limit = self.settings.conversation.rate_limit_per_minute
        if limit <= 0:
            return False
        now = time.monotonic()
        self._forget_quiet_windows(now)
        window = self._recent_messages[chat_id]
        while window and now - window[0] > self.rate_window_seconds:
            window.popleft()
        if len(window) >= limit:
            return True
        window.append(now)
        if len(window) == 1:
            self._rate_noticed.discard(chat_id)
        return False

    @staticmethod
    def _asked_again(text: str, history: list) -> int:
        """How often the customer already sent this same question in this conversation."""
        key = fold_phrase(text).strip(" ?!.")
        return sum(
            1
            for m in history
            if m.role == "customer" and m.text and fold_phrase(m.text).strip(" ?!.") == key
        )


def _handoff_message(created: bool, reason: str, desk: bool) -> str:
    """Which persona text tells the customer the truth about their request: with no
    staff chat nobody can reply in this one, so the text says how to reach people."""
    if not created:
        return "handoff_joined" if desk else "handoff_joined_unavailable"
    if reason == "llm_error":
        return "llm_failed" if desk else "llm_failed_unavailable"
    return "handoff_opened" if desk else "handoff_unavailable"


def _previous_question(history: list) -> str | None:
    """The customer's last message in this conversation, for reading a follow-up."""
    for message in reversed(history):
        if message.role == "customer" and message.text and phrase_kind(message.text) is None:
            return message.text
    return None


def _audit(
    path: str,
    completion: Completion,
    messages: list,
    matches: tuple[SearchResult, ...],
    version: str,
) -> AnswerAudit:
    return AnswerAudit(
        path=path,
        model=completion.model,
        request=messages,
        latency_ms=completion.latency_ms,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        faq_ids=tuple(m.id for m in matches),
        faq_confidence=matches[0].confidence if matches else None,
        knowledge_version=version,
    )


def _handoff_request(completion: Completion, marker: str) -> str | None:
    """The model's summary when it asked for a person (tool call or marker), else None."""
    for call in completion.tool_calls:
        if call.name == "escalate":
            summary = str(call.arguments.get("summary") or "").strip()
            reason = str(call.arguments.get("reason") or "").strip()
            return summary or reason
    if marker and marker in completion.text:
        return completion.text.replace(marker, "").strip()
    return None
