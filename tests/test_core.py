"""The conversation core through its public API: real SQLite, the LLM double over HTTP.

No Telegram: a door is whatever turns input into ``Incoming`` and calls, and
sends the ``Outcome``. The staff desk here is a door of that kind, one that
writes down what staff would have been shown.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.core import Incoming
from bot.escalation_policy import EscalationPolicy
from bot.outcome import Path as AnswerPath
from bot.outcome import read_choice
from bot.person_request import PersonRequests
from bot.reasons import Reason
from bot.services import open_services
from bot.settings import EscalationSettings
from bot.store.conversations import Customer, StoredMessage
from tests.fakes import Reply

ANN = Customer(chat_id=601, user_id=601, first_name="Ann", language="en")
BEN = Customer(chat_id=602, user_id=602, first_name="Ben", language="en")
REFUNDS = "How long do refunds take?"


class NotedDesk:
    """A staff desk that keeps what staff would see, in order."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    async def ticket_opened(self, ticket, context) -> None:
        self.events.append(("opened", ticket.id, context.reason))

    async def ticket_escalated_again(self, ticket, reason) -> None:
        self.events.append(("again", ticket.id, reason))

    async def ticket_ended(self, ticket, note) -> None:
        self.events.append(("ended", ticket.id, note))

    async def relay_from_customer(self, ticket, incoming, journal=None) -> None:
        self.events.append(("relayed", ticket.id, incoming.text))


def words_only(config: Path) -> None:
    """Matching by words alone: embedding the FAQ for each test would be slow."""
    path = config / "bot.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("  semantic: true", "  semantic: false"), encoding="utf-8")


def rows(settings, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(settings.storage.database_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def desk() -> NotedDesk:
    return NotedDesk()


@pytest.fixture
async def open_core(make_settings, knowledge_dirs, desk):
    """``open_core(llm=None, staff=True)``: services over a fresh database in tmp."""
    words_only(knowledge_dirs[0])
    opened = []

    async def start(llm=None, staff: bool = True):
        settings = make_settings(llm=llm)
        factory = (lambda *stores: desk) if staff else None
        services = await open_services(settings, desk_factory=factory)
        opened.append(services)
        return services, settings

    yield start
    for services in opened:
        await services.close()


async def test_the_model_answers_with_the_faq_in_its_prompt(open_core, fake_llm):
    fake_llm.script("Refunds reach your card within 5 to 10 business days.")
    services, settings = await open_core(fake_llm)
    outcome = await services.core.handle(Incoming(ANN, REFUNDS, message_id=1))
    assert outcome.path == AnswerPath.LLM == "llm"
    assert outcome.replies[0].text.startswith("Refunds reach your card")
    assert "refund" in str(fake_llm.last_request["messages"][0]).lower()
    stored = rows(settings, "SELECT role, text FROM messages WHERE chat_id = ? ORDER BY id", 601)
    assert stored == [("customer", REFUNDS), ("bot", outcome.replies[0].text)]
    assert rows(settings, "SELECT path FROM answers") == [("llm",)]


async def test_without_a_model_the_faq_answers_or_a_person_does(open_core, desk):
    services, settings = await open_core()
    answered = await services.core.handle(Incoming(ANN, REFUNDS))
    assert answered.path == "faq" and answered.ticket is None
    lost = await services.core.handle(Incoming(BEN, "Can I pay with seashells on Mars?"))
    assert lost.path == AnswerPath.HANDOFF
    assert lost.ticket is not None and lost.ticket.reason == Reason.LOW_CONFIDENCE
    assert desk.events == [("opened", lost.ticket.id, "low_confidence")]
    assert rows(settings, "SELECT escalation_reason FROM answers WHERE path = 'handoff'") == [
        ("low_confidence",)
    ]


async def test_unsure_without_a_model_entries_are_offered_and_a_pick_answers(open_core, desk):
    services, settings = await open_core()
    text = "something about my parcel and the label"  # words-only confidence 0.68
    offer = await services.core.handle(Incoming(ANN, text))
    assert offer.path == AnswerPath.CHOICES and offer.ticket is None and desk.events == []
    picks = [b for b in offer.replies[0].buttons if b.data.startswith("faq:")]
    assert picks and offer.replies[0].buttons[-1].data == "human"
    choice = read_choice(picks[0].data)
    assert choice is not None
    language, entry_id = choice
    entry = services.knowledge.current.faq.by_id(entry_id)
    answer = await services.core.choose(ANN, language, entry_id)
    assert answer.path == AnswerPath.FAQ
    assert answer.replies[0].text == entry.answer_in(language or None).strip()
    gone = await services.core.choose(ANN, "", "no_such_entry")  # taken out since offered
    assert gone.path == AnswerPath.NOTICE
    assert gone.replies[0].text == services.knowledge.current.persona.message("choice_gone")


async def test_an_old_pick_does_nothing_while_people_have_the_chat(open_core, desk):
    services, _ = await open_core()
    await services.core.request_human(ANN)
    outcome = await services.core.choose(ANN, "", "how_to_return")
    assert outcome.path == AnswerPath.IGNORED and outcome.replies == []


async def test_the_model_asking_for_a_person_opens_a_ticket_with_its_summary(
    open_core, fake_llm, desk
):
    fake_llm.script(Reply.tool_call("escalate", {"reason": "refund", "summary": "wants money"}))
    services, settings = await open_core(fake_llm)
    outcome = await services.core.handle(Incoming(ANN, "My parcel arrived broken"))
    assert outcome.ticket is not None and outcome.ticket.reason == "model"
    assert rows(settings, "SELECT summary FROM tickets") == [("wants money",)]


async def test_a_failing_model_falls_back_to_the_faq_then_to_people(open_core, fake_llm):
    fake_llm.responder = lambda request: Reply.http_error(400, "bad request")
    services, _ = await open_core(fake_llm)
    answered = await services.core.handle(Incoming(ANN, REFUNDS))
    assert answered.path == "faq"
    lost = await services.core.handle(Incoming(BEN, "Can I pay with seashells on Mars?"))
    assert lost.ticket is not None and lost.ticket.reason == Reason.LLM_ERROR


async def test_with_a_ticket_open_messages_go_to_staff_and_can_raise_its_reason(open_core, desk):
    services, settings = await open_core()
    handoff = await services.core.request_human(ANN)
    ticket = handoff.ticket
    assert ticket is not None and ticket.reason == "user_request"
    relayed = await services.core.handle(Incoming(ANN, "It is about order 1234", message_id=7))
    assert relayed.path == AnswerPath.RELAY and relayed.replies == []
    assert ("relayed", ticket.id, "It is about order 1234") in desk.events
    stored = rows(settings, "SELECT ticket_id FROM messages WHERE telegram_message_id = 7")
    assert stored == [(ticket.id,)]


async def test_a_message_handled_twice_is_stored_once_and_not_counted_as_repeated(
    open_core, knowledge_dirs
):
    # A crash replay hands the core the same Telegram message again.
    bot_yaml = knowledge_dirs[0] / "bot.yaml"
    text = bot_yaml.read_text(encoding="utf-8")
    bot_yaml.write_text(text.replace("repeat_limit: 3", "repeat_limit: 2"), encoding="utf-8")
    services, settings = await open_core()
    for _ in range(3):
        outcome = await services.core.handle(Incoming(ANN, REFUNDS, message_id=42))
        assert outcome.path == "faq", outcome
    customer_rows = "SELECT COUNT(*) FROM messages WHERE chat_id = ? AND role = 'customer'"
    assert rows(settings, customer_rows, 601) == [(1,)]
    # The same words in a new message are a repeat: it goes to a person.
    again = await services.core.handle(Incoming(ANN, REFUNDS, message_id=43))
    assert again.ticket is not None and again.ticket.reason == Reason.REPEATED


async def test_a_ticket_is_rated_only_by_its_own_customer(open_core):
    services, settings = await open_core()
    ticket = (await services.core.request_human(ANN)).ticket
    await services.tickets.resolve(ticket.id, "staff:1")
    assert (await services.core.rate_ticket(BEN, ticket.id, 1)).path == AnswerPath.IGNORED
    thanks = await services.core.rate_ticket(ANN, ticket.id, 5)
    assert thanks.path == "notice" and thanks.replies
    assert rows(settings, "SELECT rating FROM tickets") == [(5,)]


async def test_forget_closes_the_ticket_tells_staff_and_stores_the_name_again(open_core, desk):
    services, settings = await open_core()
    ticket = (await services.core.request_human(ANN)).ticket
    asked = services.core.ask_forget(ANN)
    assert [b.data for b in asked.replies[0].buttons] == ["forget:yes", "forget:no"]
    kept = await services.core.forget(ANN, confirmed=False)
    assert kept.replies and rows(settings, "SELECT status FROM tickets") == [("open",)]
    done = await services.core.forget(ANN, confirmed=True)
    assert done.path == "notice" and done.replies
    assert rows(settings, "SELECT status FROM tickets") == [("resolved",)]
    assert desk.events[-1][:2] == ("ended", ticket.id)
    assert rows(settings, "SELECT COUNT(*) FROM messages WHERE chat_id = 601") == [(0,)]
    await services.core.handle(Incoming(ANN, REFUNDS))
    assert rows(settings, "SELECT first_name FROM customers WHERE chat_id = 601") == [("Ann",)]


async def test_an_edit_is_noted_or_relayed_to_staff(open_core, desk):
    services, settings = await open_core()
    edit = Incoming(ANN, "(edited) refunds?", message_id=3, edited=True)
    ignored = await services.core.edited(edit)
    assert ignored.path == "notice" and ignored.replies
    await services.core.handle(Incoming(ANN, "I need a human", message_id=3))
    relayed = await services.core.edited(edit)
    assert relayed.path == AnswerPath.RELAY
    assert desk.events[-1][0] == "relayed"
    # Stored beside the message it corrects, not swallowed as the same message.
    texts = rows(settings, "SELECT text FROM messages WHERE role = 'customer' ORDER BY id")
    assert texts == [("I need a human",), ("(edited) refunds?",)]


def message(role: str, text: str) -> StoredMessage:
    return StoredMessage(0, role, "text", text, "")


async def test_the_escalation_policy_gives_one_reason_or_none():
    policy = EscalationPolicy(EscalationSettings(repeat_limit=2), PersonRequests(None))
    assert policy.on_words("I want to talk to a human") == Reason.USER_REQUEST
    assert policy.on_words(REFUNDS) is None
    history = [message("customer", REFUNDS)]
    assert policy.on_repeat(REFUNDS + "?", history) == Reason.REPEATED
    assert policy.on_repeat("Where is my parcel?", history) is None
    assert policy.without_answer(llm_failed=True) == "llm_error"
    assert policy.without_answer(llm_failed=False) == "low_confidence"
    assert policy.on_feedback(1) is None and policy.on_feedback(2) == "negative_feedback"
    assert policy.upgrade("I want to talk to a human", current="low_confidence") == "user_request"
    assert policy.upgrade("I want to talk to a human", current="keyword") is None
