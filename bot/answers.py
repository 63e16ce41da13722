"""Answering a question: from the model with the FAQ's best matches, or from the FAQ alone.

Each way gives an ``Outcome`` to send, or says that it could not: the model by
asking for a person (``ModelHandoff``) or failing (``LLMError``), the FAQ by
having no confident match (None). Whether that hands the customer over is the
core's to decide, through ``bot.escalation_policy``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.context_budget import ContextBudget, PromptParts
from bot.errors import LLMBadResponse
from bot.handoff_marker import hiding_marker
from bot.images import without_images
from bot.knowledge.faq import SearchResult
from bot.knowledge.followup import search_in_context
from bot.knowledge.language import detect_language
from bot.knowledge.live import Knowledge
from bot.llm import Completion
from bot.outcome import (
    HUMAN_BUTTON,
    Button,
    DoneCallback,
    Outcome,
    Path,
    Retriever,
    StreamCallback,
    choice_data,
)
from bot.prompt import ESCALATE_TOOL, Turn
from bot.replies import Replies
from bot.settings import Settings
from bot.small_talk import ACK, EMOJI, FAREWELL, GIBBERISH, GREETING, THANKS
from bot.store.conversations import AnswerAudit, Customer, StoredMessage


@dataclass(frozen=True)
class ModelHandoff:
    """The model asked for a person; ``summary`` is what it wrote for staff."""

    summary: str | None
    audit: AnswerAudit


@dataclass(frozen=True)
class Question:
    """One question to answer, with all it is answered from."""

    customer: Customer
    knowledge: Knowledge
    text: str
    matches: tuple[SearchResult, ...]
    turns: list[Turn]
    offer: bool  # a "talk to a person" button goes under the answer
    images: list[dict]

    def language(self) -> str | None:
        """The language the customer wrote in, with Telegram's code only as a hint;
        None when it cannot be told."""
        return detect_language(self.text, self.customer.language)


class Answers:
    def __init__(
        self,
        settings: Settings,
        budget: ContextBudget | None,
        semantic: Retriever | None,
        replies: Replies,
    ):
        self.settings = settings
        self.budget = budget  # None: no model, the FAQ answers alone
        self.semantic = semantic  # matching by meaning, when switched on
        self.replies = replies

    def words_decide(self, knowledge: Knowledge, text: str, previous: str | None) -> bool:
        """Whether the words alone answer ``text``, so that its meaning is not looked at;
        never for a follow-up of ``previous``, which is read by meaning anyway."""
        if self.semantic is None or previous:
            return False
        return self.semantic.words_decide(knowledge, text)

    async def retrieve(
        self, knowledge: Knowledge, text: str, top_k: int, previous: str | None = None
    ) -> list[SearchResult]:
        """The FAQ matches for a message, by words and, when switched on, by meaning;
        a follow-up is also read with the question before it (``followup``)."""

        async def search(query: str, k: int, context: str | None) -> list[SearchResult]:
            if self.semantic is not None:
                return await self.semantic.search(knowledge, query, k, context, bool(previous))
            return knowledge.search(f"{context}\n{query}" if context else query, k)

        threshold = self.settings.retrieval.confidence_threshold
        return await search_in_context(search, text, previous, top_k, threshold)

    async def from_model(
        self,
        question: Question,
        on_text: StreamCallback | None,
        on_done: DoneCallback | None = None,
    ) -> Outcome | ModelHandoff:
        """Raises ``LLMError`` when the model gives no usable answer."""
        assert self.budget is not None
        llm_settings = self.settings.llm
        conv = self.settings.conversation
        knowledge = question.knowledge
        prompt = PromptParts(
            knowledge.persona,
            question.matches,
            question.turns,
            question.text,
            history_messages=conv.history_messages,
            history_chars=conv.history_chars,
            tools=llm_settings.use_tools,
            marker=llm_settings.escalation_marker,
            images=question.images or (),
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
        audit = _audit(completion, without_images(messages), question.matches, knowledge.version)
        handoff = _handoff_request(completion, llm_settings.escalation_marker)
        if handoff is not None:
            return ModelHandoff(handoff or None, audit)
        text = completion.text.strip()
        if not text:
            # Only a call to a tool we never offered: nothing to tell the customer,
            # so answer the way we would without the model.
            raise LLMBadResponse("the model answered with neither text nor a handoff")
        buttons = self.replies.answer_buttons(knowledge, question.offer)
        return await self.replies.say(question.customer, text, Path.LLM, buttons, audit)

    async def from_faq(self, question: Question) -> Outcome | None:
        """FAQ-only mode, and the fallback when the model cannot answer: the entry's
        answer in the language the customer wrote in, when the FAQ has it; None
        without a confident match."""
        matches, knowledge, customer = question.matches, question.knowledge, question.customer
        best = matches[0] if matches else None
        if best is None or best.confidence < self.settings.retrieval.confidence_threshold:
            return None
        audit = AnswerAudit(
            path=Path.FAQ,
            faq_ids=tuple(m.id for m in matches),
            faq_confidence=best.confidence,
            knowledge_version=knowledge.version,
        )
        buttons = self.replies.answer_buttons(knowledge, question.offer)
        language = question.language() if best.entry.answers else None
        answer = best.entry.answer_in(language).strip()
        return await self.replies.say(customer, answer, Path.FAQ, buttons, audit)

    async def offer_choices(self, question: Question) -> Outcome | None:
        """FAQ-only mode without a confident match: the likeliest entries as buttons to
        pick from, beside "talk to a person", instead of a ticket for a question the FAQ
        may well answer. None when no entry is likely enough (``retrieval.choices``)."""
        retrieval = self.settings.retrieval
        customer, knowledge = question.customer, question.knowledge
        likely = [m for m in question.matches if m.confidence >= retrieval.choice_threshold]
        if not likely:
            return None
        translated = any(m.entry.answers or m.entry.questions for m in likely)
        language = (question.language() if translated else None) or ""
        offered = [(m, choice_data(language, m.id)) for m in likely]
        offered = [(m, data) for m, data in offered if data is not None][: retrieval.choices]
        if not offered:
            return None
        persona = knowledge.persona
        buttons = tuple(
            Button(choice_label(m.entry.question_in(language or None)), data) for m, data in offered
        )
        buttons += (Button(persona.message("talk_to_person_button"), HUMAN_BUTTON),)
        audit = AnswerAudit(
            path=Path.CHOICES,
            faq_ids=tuple(m.id for m, _ in offered),
            faq_confidence=offered[0][0].confidence,
            knowledge_version=knowledge.version,
        )
        text = persona.message("faq_choices")
        return await self.replies.say(customer, text, Path.CHOICES, buttons, audit)

    async def chat_back(
        self, customer: Customer, knowledge: Knowledge, kind: str, history: list[StoredMessage]
    ) -> Outcome | None:
        """The persona's reply to small talk, which is never a question to search for;
        None when the message should take the normal flow after all."""
        persona = knowledge.persona
        last_bot = next((m.text or "" for m in reversed(history) if m.role == "bot"), "")
        audit = AnswerAudit(path=Path.SMALL_TALK, knowledge_version=knowledge.version)
        if kind == GIBBERISH:
            # Asked once already: perhaps it means something after all.
            rephrase = persona.message("rephrase")
            if last_bot.strip() == rephrase.strip():
                return None
            return await self.replies.say(customer, rephrase, Path.SMALL_TALK, audit=audit)
        if kind == ACK and self.budget is not None and last_bot.rstrip().endswith("?"):
            return None  # "yes" answers the question the model just asked
        key = {
            GREETING: "small_talk_greeting",
            THANKS: "small_talk_thanks",
            FAREWELL: "small_talk_farewell",
            ACK: "small_talk_ack",
            EMOJI: "small_talk_ack",
        }[kind]
        return await self.replies.say(customer, persona.message(key), Path.SMALL_TALK, audit=audit)


CHOICE_LABEL_CHARS = 60  # longer questions are cut: a button shows one or two lines


def choice_label(question: str) -> str:
    question = " ".join(question.split())
    if len(question) <= CHOICE_LABEL_CHARS:
        return question
    return question[: CHOICE_LABEL_CHARS - 1].rstrip() + "…"


def _audit(
    completion: Completion,
    messages: list,
    matches: tuple[SearchResult, ...],
    version: str,
) -> AnswerAudit:
    return AnswerAudit(
        path=Path.LLM,
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
