"""No customer is stuck: a request nobody has taken yet can be withdrawn (/cancel, a button,
or when /reset asks), and one a person has taken is not, truthfully.

FAQ-only mode with a forum staff group, through python-telegram-bot and the Bot API double.
"""

from __future__ import annotations

from tests.fakes import TgUser
from tests.helpers import button_data, database, faq_answer, persona_message, rows, tickets

STAFF = -1009200
CUSTOMER = TgUser(id=4201, first_name="Wendy")
AGENT = TgUser(id=501, first_name="Sam")


async def _ticket_open(fake_telegram, make_settings, start_bot):
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(fake_telegram, STAFF_CHAT_ID=str(STAFF))
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER.id, "I want to talk to a human", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1, timeout=30)
    topics = await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF))
    return settings, next(iter(topics))


def staff_messages(fake, thread_id: int) -> list[dict]:
    return [m for m in fake.bot_messages(STAFF) if m.get("message_thread_id") == thread_id]


def withdrawn_tickets(db) -> list[tuple]:
    return [
        tuple(r)
        for r in rows(
            db,
            "SELECT t.id, t.status, e.detail FROM tickets t JOIN ticket_events e "
            "ON e.ticket_id = t.id AND e.event = 'resolved'",
        )
    ]


async def test_cancel_withdraws_an_unclaimed_ticket(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, faq = knowledge_dirs
    settings, thread_id = await _ticket_open(fake_telegram, make_settings, start_bot)
    db = database(settings)
    handoff = fake_telegram.bot_messages(CUSTOMER.id)[0]
    assert button_data(handoff) == ["withdraw"], "the handoff message offers to take it back"

    fake_telegram.user_text(CUSTOMER.id, "/cancel", CUSTOMER)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert told[1] == persona_message(config, "withdrawn", ticket_id="1")
    assert withdrawn_tickets(db) == [(1, "resolved", "withdrawn")]
    note = persona_message(config, "withdrawn", ticket_id="1")  # customer side differs
    await fake_telegram.wait_for(
        lambda: any(
            "customer withdrew request #1" in m.get("text", "")
            for m in staff_messages(fake_telegram, thread_id)
        )
    )
    assert note not in [m.get("text") for m in staff_messages(fake_telegram, thread_id)]
    assert fake_telegram.topics(STAFF)[thread_id].closed

    fake_telegram.user_text(CUSTOMER.id, "How long do refunds take?", CUSTOMER)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 3, timeout=30)
    assert told[2] == faq_answer(faq, "refund_time"), "the bot answers again"
    assert len(tickets(db)) == 1


async def test_the_button_withdraws_and_a_claimed_ticket_stays(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    settings, thread_id = await _ticket_open(fake_telegram, make_settings, start_bot)
    db = database(settings)
    handoff = fake_telegram.bot_messages(CUSTOMER.id)[0]
    fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, "withdraw", handoff["message_id"])
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert told[1] == persona_message(config, "withdrawn", ticket_id="1")
    assert withdrawn_tickets(db) == [(1, "resolved", "withdrawn")]

    # A second request, claimed by staff: the customer cannot withdraw it.
    fake_telegram.user_text(CUSTOMER.id, "/human", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 3)
    await fake_telegram.wait_for(lambda: len(fake_telegram.topics(STAFF)) == 2)
    second = max(fake_telegram.topics(STAFF))
    fake_telegram.group_text(STAFF, "Hi Wendy, Sam here.", AGENT, second)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 4)
    # The reply is delivered before it is recorded, and recording it claims the ticket.
    await fake_telegram.wait_for(lambda: [t["status"] for t in tickets(db)][-1] == "active")
    fake_telegram.user_text(CUSTOMER.id, "/cancel", CUSTOMER)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 5)
    assert told[4] == persona_message(config, "withdraw_refused", ticket_id="2")
    assert [t["status"] for t in tickets(db)] == ["resolved", "active"]


async def test_reset_with_an_open_ticket_asks_first(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    settings, _ = await _ticket_open(fake_telegram, make_settings, start_bot)
    db = database(settings)
    fake_telegram.user_text(CUSTOMER.id, "/reset", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    question = fake_telegram.bot_messages(CUSTOMER.id)[1]
    assert question["text"] == persona_message(config, "reset_ticket_open", ticket_id="1")
    assert button_data(question) == ["withdraw", "keep"]
    fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, "keep", question["message_id"])
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 3)
    assert told[2] == persona_message(config, "request_kept", ticket_id="1")
    assert [t["status"] for t in tickets(db)] == ["open"]
    fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, "withdraw", question["message_id"])
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 4)
    assert told[3] == persona_message(config, "withdrawn", ticket_id="1")
    assert [t["status"] for t in tickets(db)] == ["resolved"]


async def test_cancel_without_a_ticket(fake_telegram, make_settings, start_bot, knowledge_dirs):
    config, _ = knowledge_dirs
    settings = make_settings(fake_telegram)
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER.id, "/cancel", CUSTOMER)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 1, timeout=30)
    assert told[0] == persona_message(config, "withdraw_nothing")
    fake_telegram.user_text(CUSTOMER.id, "/reset", CUSTOMER)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert told[1] == persona_message(config, "reset")
