"""Every way a customer reaches a person, each stored with its reason code, through Telegram.

The bot runs against the Bot API double and the LLM double; what was stored is read from
the SQLite file, so each test shows the trigger, the reason recorded on the ticket and on
its escalation event, and what the customer was told.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.knowledge.loader import load_persona
from tests.fakes import Reply, TgUser
from tests.helpers import REPO, all_handled, buttons, rows, tickets, tune

STAFF = -1009100
CUSTOMER = TgUser(id=3001, first_name="Bruno")


def escalations(path: Path) -> list[tuple[int, str]]:
    found = rows(
        path, "SELECT ticket_id, reason FROM ticket_events WHERE event = 'escalated' ORDER BY id"
    )
    return [(r["ticket_id"], r["reason"]) for r in found]


def edit_bot_yaml(config: Path, old: str, new: str) -> None:
    path = config / "bot.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def start(fake_telegram, make_settings, start_bot):
    """Start the bot with a staff group, with or without a model; returns the database path."""

    async def go(llm=None, **env: str) -> Path:
        fake_telegram.add_group(STAFF)
        settings = make_settings(fake_telegram, llm, STAFF_CHAT_ID=str(STAFF), **env)
        await start_bot(settings)
        return settings.storage.database_path

    return go


async def wait_ticket(fake, db: Path) -> sqlite3.Row:
    return (await fake.wait_for(lambda: tickets(db)))[0]


def assert_told_handoff(text: str, ticket_id: int = 1) -> None:
    assert f"#{ticket_id}" in text
    if "Monday to Friday 9:00–18:00" in text:
        assert "reply" in text and "here in this chat" in text
        return
    # A customer who wrote in another language is told in it, office hours included.
    persona = load_persona(REPO / "config" / "persona.yaml")
    assert any(persona.speaking(code).office_hours in text for code in persona.translations), text


async def handed_over(fake, db: Path, reason: str) -> sqlite3.Row:
    """The one ticket opened with `reason`, the escalation event, the card and the notice."""
    ticket = await wait_ticket(fake, db)
    assert (ticket["reason"], ticket["status"], ticket["chat_id"]) == (
        reason,
        "open",
        CUSTOMER.id,
    )
    assert escalations(db) == [(1, reason)]
    readable = load_persona(REPO / "config" / "persona.yaml").reason_name(reason)
    await fake.wait_for(
        lambda: any("Ticket #1 · " + readable in t for t in fake.sent_messages(STAFF))
    )
    told = await fake.wait_for(lambda: [t for t in fake.sent_messages(CUSTOMER.id) if "#1" in t])
    assert_told_handoff(told[-1])
    assert len(tickets(db)) == 1
    return ticket


# -- the customer asks ------------------------------------------------------------------------


async def test_human_command(fake_telegram, fake_llm, start):
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "/human", CUSTOMER)
    await handed_over(fake_telegram, db, "user_request")
    assert fake_llm.requests == []


async def test_talk_to_a_person_button(fake_telegram, fake_llm, start):
    db = await start(fake_llm)
    # A sticker gets the bot's "text only" reply, which carries the button.
    fake_telegram.user_sticker(CUSTOMER.id, CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    offer = fake_telegram.bot_messages(CUSTOMER.id)[0]
    assert ("Talk to a person", "human") in buttons(offer)
    assert tickets(db) == []
    fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, "human", offer["message_id"])
    await handed_over(fake_telegram, db, "user_request")


@pytest.mark.parametrize(
    "text",
    [
        "I want to talk to a human",
        "let me talk to an actual person",
        "找真人客服",
        "нужен живой оператор",
        "Quiero hablar con una persona",
        "Ich möchte mit einem Mitarbeiter sprechen",
        "Je voudrais parler à un conseiller",
        "Quero falar com um atendente",
        "オペレーターと話したい",
    ],
)
async def test_plain_language_request_needs_no_model(fake_telegram, fake_llm, start, text):
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, text, CUSTOMER)
    await handed_over(fake_telegram, db, "user_request")
    assert fake_llm.requests == []


@pytest.mark.parametrize(
    "text",
    [
        "do you need a human signature on the form?",
        "my insurance agent sent me here",
        "which mobile operator do you support?",
    ],
)
async def test_look_alikes_are_answered_not_handed_over(fake_telegram, fake_llm, start, text):
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, text, CUSTOMER)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    assert told == [f"Answer to: {text}"]
    assert len(fake_llm.requests) == 1
    assert tickets(db) == []


async def test_configured_handoff_phrase(fake_telegram, fake_llm, start, knowledge_dirs):
    config, _ = knowledge_dirs
    edit_bot_yaml(
        config, "handoff_phrases: []", 'handoff_phrases: ["ring me back", "callback please"]'
    )
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "Could you ring me back tomorrow?", CUSTOMER)
    await handed_over(fake_telegram, db, "user_request")
    assert fake_llm.requests == []


async def test_an_open_ticket_is_joined_not_duplicated(fake_telegram, fake_llm, start):
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "/human", CUSTOMER)
    await handed_over(fake_telegram, db, "user_request")
    fake_telegram.user_text(CUSTOMER.id, "/human", CUSTOMER)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert "#1 is already with our team" in told[1]
    assert escalations(db) == [(1, "user_request")], "asking again is not a second escalation"
    assert [t["id"] for t in tickets(db)] == [1]
    await fake_telegram.wait_for(
        lambda: any("asked again" in t for t in fake_telegram.sent_messages(STAFF))
    )


# -- the model asks --------------------------------------------------------------------------


async def test_model_calls_the_escalate_tool(fake_telegram, fake_llm, start):
    summary = "Kettle arrived with a cracked lid; customer wants a replacement."
    fake_llm.script(Reply.tool_call("escalate", {"reason": "damaged item", "summary": summary}))
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "How long does a refund take?", CUSTOMER)
    ticket = await handed_over(fake_telegram, db, "model")
    assert ticket["summary"] == summary
    card = fake_telegram.sent_messages(STAFF)[0]
    assert f"Summary: {summary}" in card
    assert "FAQ found: refund_time" in card, "staff see what the bot found"
    assert "How long does a refund take?" in card, "and the last messages"
    tools = fake_llm.last_request["tools"]
    assert [t["function"]["name"] for t in tools] == ["escalate"]


async def test_marker_stands_in_for_the_tool_when_tools_are_off(
    fake_telegram, fake_llm, start, knowledge_dirs
):
    config, _ = knowledge_dirs
    edit_bot_yaml(config, "use_tools: true", "use_tools: false")
    fake_llm.script(Reply.text("[[HANDOFF]] Customer wants to change the delivery address"))
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "Can you change where my parcel goes?", CUSTOMER)
    ticket = await handed_over(fake_telegram, db, "model")
    assert ticket["summary"] == "Customer wants to change the delivery address"
    assert "tools" not in fake_llm.last_request
    assert "[[HANDOFF]]" in fake_llm.last_request["messages"][0]["content"]
    assert all("[[HANDOFF]]" not in t for t in fake_telegram.sent_messages(CUSTOMER.id))


async def test_model_failure_hands_over_with_llm_error(fake_telegram, fake_llm, start):
    fake_llm.script(Reply.http_error(401, "Incorrect API key provided."))
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "Something about my order nobody knows", CUSTOMER)
    await handed_over(fake_telegram, db, "llm_error")
    told = fake_telegram.sent_messages(CUSTOMER.id)
    assert "technical problem" in told[-1]


# -- rules and signals from the conversation ------------------------------------------------


async def test_escalate_rule_from_yaml(fake_telegram, fake_llm, start):
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "I will file a chargeback with my bank", CUSTOMER)
    await handed_over(fake_telegram, db, "keyword")
    assert fake_llm.requests == []


async def test_offer_rule_adds_the_button_and_pressing_it_hands_over(
    fake_telegram, fake_llm, start
):
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "This delay is unacceptable", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    answer = fake_telegram.bot_messages(CUSTOMER.id)[0]
    assert answer["text"] == "Answer to: This delay is unacceptable"
    assert ("Talk to a person", "human") in buttons(answer)
    assert tickets(db) == []
    fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, "human", answer["message_id"])
    await handed_over(fake_telegram, db, "user_request")


async def test_no_offer_button_without_a_rule(fake_telegram, fake_llm, start):
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "How long does a refund take?", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    answer = fake_telegram.bot_messages(CUSTOMER.id)[0]
    assert "human" not in [data for _, data in buttons(answer)]
    assert tickets(db) == []


async def test_rules_are_configurable(fake_telegram, fake_llm, start, knowledge_dirs):
    config, _ = knowledge_dirs
    edit_bot_yaml(
        config,
        '    - phrases: ["chargeback", "dispute the charge", "dispute the payment"]',
        '    - phrases: ["stolen parcel"]',
    )
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "Chargeback is my next step", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    assert tickets(db) == []
    fake_telegram.user_text(CUSTOMER.id, "I think it was a stolen parcel", CUSTOMER)
    await handed_over(fake_telegram, db, "keyword")


async def test_low_confidence_without_a_model(fake_telegram, start, knowledge_dirs):
    tune(knowledge_dirs[0], choices="0")  # hand over at once
    db = await start()
    fake_telegram.user_text(CUSTOMER.id, "What is the airspeed of an unladen swallow?", CUSTOMER)
    await handed_over(fake_telegram, db, "low_confidence")
    assert "reliable answer to that" in fake_telegram.sent_messages(CUSTOMER.id)[0]


async def test_confident_faq_answer_without_a_model_opens_nothing(fake_telegram, start):
    db = await start()
    fake_telegram.user_text(CUSTOMER.id, "How long does a refund take?", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    await all_handled(fake_telegram, db)
    assert tickets(db) == []


async def test_two_thumbs_down_hand_over(fake_telegram, fake_llm, start):
    db = await start(fake_llm)
    for number, question in enumerate(("Where is my parcel?", "When will it arrive?"), 1):
        fake_telegram.user_text(CUSTOMER.id, question, CUSTOMER)
        await fake_telegram.wait_for(
            lambda n=number: (
                len([m for m in fake_telegram.bot_messages(CUSTOMER.id) if buttons(m)]) >= n
            )
        )
    answers = [m for m in fake_telegram.bot_messages(CUSTOMER.id) if buttons(m)]
    first_down = next(d for label, d in buttons(answers[0]) if label == "👎")
    fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, first_down, answers[0]["message_id"])
    await fake_telegram.wait_for(lambda: rows(db, "SELECT COUNT(*) FROM feedback")[0][0] == 1)
    assert tickets(db) == [], "one 👎 is not enough"
    second_down = next(d for label, d in buttons(answers[1]) if label == "👎")
    fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, second_down, answers[1]["message_id"])
    await handed_over(fake_telegram, db, "negative_feedback")


async def test_a_forged_thumbs_down_counts_for_nothing(fake_telegram, fake_llm, start):
    db = await start(fake_llm)
    fake_telegram.user_text(CUSTOMER.id, "Where is my parcel?", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    answer = fake_telegram.bot_messages(CUSTOMER.id)[0]
    down = next(d for label, d in buttons(answer) if label == "👎")
    stranger = TgUser(id=3999)
    for _ in range(2):
        pressed = fake_telegram.callback_query(stranger.id, stranger, down, 1)
        await fake_telegram.wait_for(lambda p=pressed: fake_telegram.callback_answer(p))
    assert rows(db, "SELECT COUNT(*) FROM feedback")[0][0] == 0
    assert tickets(db) == []


async def test_same_question_three_times(fake_telegram, fake_llm, start):
    db = await start(fake_llm)
    for n in (1, 2):
        fake_telegram.user_text(CUSTOMER.id, "Where is my parcel?", CUSTOMER)
        await fake_telegram.wait_for_messages(CUSTOMER.id, n)
    assert tickets(db) == []
    fake_telegram.user_text(CUSTOMER.id, "where is my parcel", CUSTOMER)
    await handed_over(fake_telegram, db, "repeated")
    assert len(fake_llm.requests) == 2, "the third time goes to a person, not the model"
