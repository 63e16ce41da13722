"""The staff desk end to end: a ticket's topic (or card), relays both ways, close, rate, reopen.

Everything goes through python-telegram-bot against the Bot API double and the LLM double;
the database is read directly to see what was stored, as an operator would.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fakes import TgUser
from tests.helpers import rows, tickets

STAFF = -1009000
CUSTOMER = TgUser(id=1001, first_name="Alice", last_name="Archer", username="alice")
OTHER = TgUser(id=2002, first_name="Mallory")
AGENT = TgUser(id=501, first_name="Sam")
ADMIN = TgUser(id=777, first_name="Ada")


async def wait_db(fake, path: Path, sql: str, *params):
    """Wait until a query returns a truthy first column, and return that row."""

    def check():
        found = rows(path, sql, *params)
        return found[0] if found and found[0][0] else None

    return await fake.wait_for(check)


def staff_messages(fake, thread_id: int | None = None) -> list[dict]:
    return [
        m
        for m in fake.bot_messages(STAFF)
        if thread_id is None or m.get("message_thread_id") == thread_id
    ]


def buttons(message: dict) -> list[str]:
    markup = message.get("reply_markup") or {}
    return [b.get("callback_data") for row in markup.get("inline_keyboard", []) for b in row]


def llm_saw(request: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in request["messages"])


async def settled(fake) -> None:
    """Let every update already queued be taken and handled before looking for its absence."""
    await fake.wait_until_consumed()
    for _ in range(20):
        await asyncio.sleep(0.01)


async def open_ticket_in_forum(fake_telegram, fake_llm, make_settings, start_bot):
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(fake_telegram, fake_llm, STAFF_CHAT_ID=str(STAFF))
    bot = await start_bot(settings)
    fake_telegram.user_text(CUSTOMER.id, "I want to talk to a human", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    topics = await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF))
    thread_id = next(iter(topics))
    await fake_telegram.wait_for(lambda: staff_messages(fake_telegram, thread_id))
    return bot, settings.storage.database_path, thread_id


async def test_forum_ticket_lifecycle(fake_telegram, fake_llm, make_settings, start_bot):
    bot, db, thread_id = await open_ticket_in_forum(
        fake_telegram, fake_llm, make_settings, start_bot
    )

    # Exactly one ticket, for this customer, with the reason the customer gave.
    found = tickets(db)
    assert [(t["id"], t["chat_id"], t["status"], t["reason"]) for t in found] == [
        (1, CUSTOMER.id, "open", "user_request")
    ]
    events = rows(db, "SELECT event, reason FROM ticket_events WHERE ticket_id = 1")
    assert ("escalated", "user_request") in [tuple(e) for e in events]
    assert fake_llm.requests == [], "a plain request for a person needs no model"

    # The customer is told the truth: ticket number, a person replies here, office hours.
    told = fake_telegram.sent_messages(CUSTOMER.id)
    assert len(told) == 1
    assert "#1" in told[0] and "reply right here" in told[0] and "Monday to Friday" in told[0]

    # One topic named after the ticket, opened with a card carrying Claim and Close.
    topics = fake_telegram.topics(STAFF)
    assert [t.name for t in topics.values()] == ["#1 · Alice Archer · Asked for a person"]
    card = staff_messages(fake_telegram, thread_id)[0]
    assert "Ticket #1 · Asked for a person" in card["text"]
    assert "Earlier tickets" not in card["text"], "a first ticket has no history"
    assert "Alice Archer (@alice)" in card["text"]
    assert "I want to talk to a human" in card["text"], "the card shows the last messages"
    assert buttons(card) == ["staff:claim:1", "staff:close:1"]
    assert found[0]["staff_thread_id"] == thread_id

    # A staff reply in the topic reaches the customer, signed as the team, and the ticket is active.
    fake_telegram.group_text(STAFF, "Hi Alice, Sam here. Let me look.", AGENT, thread_id)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert told[1] == "👤 Support: Hi Alice, Sam here. Let me look."
    assert "Sam" not in told[1].split(":")[0], "staff names stay private by default"
    await wait_db(fake_telegram, db, "SELECT status = 'active' FROM tickets WHERE id = 1")

    # The customer's next message goes to the topic, and no model is asked.
    fake_telegram.user_text(CUSTOMER.id, "Order 4711 arrived broken", CUSTOMER)
    await fake_telegram.wait_for(
        lambda: any(
            "Order 4711 arrived broken" in m.get("text", "")
            for m in staff_messages(fake_telegram, thread_id)
        )
    )
    # A photo from the customer is copied into the topic too.
    fake_telegram.user_photo(CUSTOMER.id, CUSTOMER, caption="the dent")
    await fake_telegram.wait_for(
        lambda: any("photo" in m for m in staff_messages(fake_telegram, thread_id))
    )
    await settled(fake_telegram)
    assert fake_llm.requests == []
    assert len(fake_telegram.sent_messages(CUSTOMER.id)) == 2, "the bot must not answer itself"

    # A note stays internal.
    fake_telegram.group_text(STAFF, "/note customer is a VIP", AGENT, thread_id)
    await fake_telegram.wait_for(
        lambda: any("Note saved" in m.get("text", "") for m in staff_messages(fake_telegram))
    )
    notes = rows(db, "SELECT text FROM messages WHERE role = 'note'")
    assert [n["text"] for n in notes] == ["customer is a VIP"]

    # A staff photo reaches the customer as a copy.
    photo = fake_telegram.add_file(b"\xff\xd8label", kind="photo")
    fake_telegram.group_message(
        STAFF, AGENT, message_thread_id=thread_id, photo=[photo], caption="Return label"
    )
    await fake_telegram.wait_for(
        lambda: any("photo" in m for m in fake_telegram.bot_messages(CUSTOMER.id))
    )
    copied = [m for m in fake_telegram.bot_messages(CUSTOMER.id) if "photo" in m][0]
    assert copied["caption"] == "👤 Support: Return label"
    await settled(fake_telegram)
    assert all("VIP" not in t for t in fake_telegram.sent_messages(CUSTOMER.id))

    # /close resolves, closes the topic, tells the customer and asks for a rating.
    before = len(fake_telegram.bot_messages(CUSTOMER.id))
    fake_telegram.group_text(STAFF, "/close", AGENT, thread_id)
    await fake_telegram.wait_for_messages(CUSTOMER.id, before + 2)
    closing = fake_telegram.bot_messages(CUSTOMER.id)[before:]
    assert "resolved" in closing[0]["text"]
    assert buttons(closing[1]) == [f"rate:1:{n}" for n in range(1, 6)]
    ticket = tickets(db)[0]
    assert ticket["status"] == "resolved" and ticket["resolved_at"]
    await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF)[thread_id].closed)

    # The rating is stored on the ticket.
    fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, "rate:1:4", closing[1]["message_id"])
    await wait_db(fake_telegram, db, "SELECT rating = 4 FROM tickets WHERE id = 1")

    # The bot answers again, and the model does not see the closed ticket's exchange.
    fake_telegram.user_text(CUSTOMER.id, "How long does a refund take?", CUSTOMER)
    await fake_telegram.wait_for(
        lambda: (
            "Answer to: How long does a refund take?" in fake_telegram.sent_messages(CUSTOMER.id)
        )
    )
    assert len(fake_llm.requests) == 1
    seen = llm_saw(fake_llm.last_request)
    for earlier in ("talk to a human", "Sam here", "4711", "VIP", "resolved"):
        assert earlier not in seen, f"the model saw {earlier!r} from the closed ticket"
    assert len(tickets(db)) == 1


@pytest.mark.parametrize("how", ["command", "button"])
async def test_closing_in_a_forum_closes_the_topic_and_tells_staff(
    fake_telegram, fake_llm, make_settings, start_bot, how
):
    _, db, thread_id = await open_ticket_in_forum(fake_telegram, fake_llm, make_settings, start_bot)
    if how == "command":
        fake_telegram.group_text(STAFF, "/close", AGENT, thread_id)
    else:
        card = staff_messages(fake_telegram, thread_id)[0]
        fake_telegram.callback_query(STAFF, AGENT, "staff:close:1", card["message_id"])
    await fake_telegram.wait_for(
        lambda: any(
            "Ticket #1 closed" in m.get("text", "")
            for m in staff_messages(fake_telegram, thread_id)
        )
    )
    await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF)[thread_id].closed)
    assert tickets(db)[0]["status"] == "resolved"
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 3)
    assert "resolved" in told[1]


async def test_forum_without_topic_rights_falls_back_to_a_card(
    fake_telegram, fake_llm, make_settings, start_bot
):
    fake_telegram.add_forum_group(STAFF)
    fake_telegram.fail_next(
        "createForumTopic", 400, "Bad Request: not enough rights to create a topic"
    )
    settings = make_settings(fake_telegram, fake_llm, STAFF_CHAT_ID=str(STAFF))
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER.id, "I want to talk to a human", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    card = (await fake_telegram.wait_for(lambda: staff_messages(fake_telegram)))[0]
    assert "Ticket #1" in card["text"]
    assert fake_telegram.topics(STAFF) == {}
    fake_telegram.group_text(
        STAFF, "Replying to the card", AGENT, reply_to_message_id=card["message_id"]
    )
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert told[1] == "👤 Support: Replying to the card"


async def test_staff_talk_outside_ticket_topics_stays_in_the_group(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, thread_id = await open_ticket_in_forum(fake_telegram, fake_llm, make_settings, start_bot)
    lounge = fake_telegram.add_topic(STAFF, "Lounge", AGENT)
    fake_telegram.group_text(STAFF, "lunch at noon?", AGENT, lounge)
    fake_telegram.group_text(STAFF, "anyone free?", AGENT, is_forum=True)
    await settled(fake_telegram)
    assert len(fake_telegram.sent_messages(CUSTOMER.id)) == 1
    assert tickets(db)[0]["status"] == "open"


async def open_ticket_in_plain_group(fake_telegram, fake_llm, make_settings, start_bot, **env):
    fake_telegram.add_group(STAFF)
    settings = make_settings(fake_telegram, fake_llm, STAFF_CHAT_ID=str(STAFF), **env)
    bot = await start_bot(settings)
    fake_telegram.user_text(CUSTOMER.id, "I want to talk to a human", CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    card = (await fake_telegram.wait_for(lambda: staff_messages(fake_telegram)))[0]
    return bot, settings.storage.database_path, card


async def test_reply_to_card_lifecycle_without_topics(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, card = await open_ticket_in_plain_group(
        fake_telegram, fake_llm, make_settings, start_bot
    )
    assert [(t["reason"], t["status"]) for t in tickets(db)] == [("user_request", "open")]
    assert fake_telegram.calls("createForumTopic") == []
    assert "Ticket #1" in card["text"] and buttons(card) == ["staff:claim:1", "staff:close:1"]
    assert "message_thread_id" not in card
    told = fake_telegram.sent_messages(CUSTOMER.id)
    assert "#1" in told[0] and "Monday to Friday" in told[0]

    # Staff reply to the card: the customer gets it.
    fake_telegram.group_text(
        STAFF, "Hello from the team", AGENT, reply_to_message_id=card["message_id"]
    )
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert told[1] == "👤 Support: Hello from the team"

    # The customer's answer is posted in the group as a reply to the card.
    fake_telegram.user_text(CUSTOMER.id, "Thanks, the parcel never came", CUSTOMER)
    relayed = await fake_telegram.wait_for(
        lambda: [
            m for m in staff_messages(fake_telegram) if "parcel never came" in m.get("text", "")
        ]
    )
    assert relayed[0]["reply_to_message"]["message_id"] == card["message_id"]
    await settled(fake_telegram)
    assert fake_llm.requests == []
    assert len(fake_telegram.sent_messages(CUSTOMER.id)) == 2

    # Replying to the relayed message (not the card) also reaches the customer.
    fake_telegram.group_text(
        STAFF, "We will send a new one", AGENT, reply_to_message_id=relayed[0]["message_id"]
    )
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 3)
    assert told[2] == "👤 Support: We will send a new one"

    # Chatter in the group that replies to nothing stays in the group.
    fake_telegram.group_text(STAFF, "coffee anyone?", AGENT)
    await settled(fake_telegram)
    assert len(fake_telegram.sent_messages(CUSTOMER.id)) == 3

    # /close as a reply to the card: resolved, customer told, rating buttons shown.
    fake_telegram.group_text(STAFF, "/close", AGENT, reply_to_message_id=card["message_id"])
    await fake_telegram.wait_for_messages(CUSTOMER.id, 5)
    closing = fake_telegram.bot_messages(CUSTOMER.id)[3:]
    assert "resolved" in closing[0]["text"]
    assert buttons(closing[1]) == [f"rate:1:{n}" for n in range(1, 6)]
    assert tickets(db)[0]["status"] == "resolved"

    # Back to the bot, with a model that does not see the handoff.
    fake_telegram.user_text(CUSTOMER.id, "How long does a refund take?", CUSTOMER)
    await fake_telegram.wait_for(
        lambda: (
            "Answer to: How long does a refund take?" in fake_telegram.sent_messages(CUSTOMER.id)
        )
    )
    seen = llm_saw(fake_llm.last_request)
    assert "parcel never came" not in seen and "new one" not in seen
    assert len(fake_llm.requests) == 1


async def test_close_button_and_claim_button(fake_telegram, fake_llm, make_settings, start_bot):
    _, db, card = await open_ticket_in_plain_group(
        fake_telegram, fake_llm, make_settings, start_bot
    )
    fake_telegram.callback_query(STAFF, AGENT, "staff:claim:1", card["message_id"])
    await wait_db(fake_telegram, db, "SELECT status = 'active' FROM tickets WHERE id = 1")
    assert tickets(db)[0]["assignee_name"] == "Sam"

    fake_telegram.callback_query(STAFF, AGENT, "staff:close:1", card["message_id"])
    await wait_db(fake_telegram, db, "SELECT status = 'resolved' FROM tickets WHERE id = 1")
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 3)
    assert "resolved" in told[1]
    assert buttons(fake_telegram.bot_messages(CUSTOMER.id)[2]) == [
        f"rate:1:{n}" for n in range(1, 6)
    ]
    await fake_telegram.wait_for(
        lambda: any("closed by Sam" in m.get("text", "") for m in staff_messages(fake_telegram))
    )


async def test_staff_commands_list_show_claim_reopen(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, thread_id = await open_ticket_in_forum(fake_telegram, fake_llm, make_settings, start_bot)

    def said(text: str):
        return lambda: [m for m in staff_messages(fake_telegram) if text in m.get("text", "")]

    fake_telegram.group_text(STAFF, "/tickets", AGENT, is_forum=True)
    listing = (await fake_telegram.wait_for(said("open ticket(s)")))[0]["text"]
    assert "#1 · open · Asked for a person · Alice Archer (@alice)" in listing

    fake_telegram.group_text(STAFF, "/ticket 1", AGENT)
    shown = (await fake_telegram.wait_for(said("🎫 #1 ·")))[0]["text"]
    assert "I want to talk to a human" in shown

    fake_telegram.group_text(STAFF, "/claim", AGENT, thread_id)
    await fake_telegram.wait_for(said("Sam claimed ticket #1"))
    ticket = tickets(db)[0]
    assert (ticket["status"], ticket["assignee_id"]) == ("active", AGENT.id)

    fake_telegram.group_text(STAFF, "/close 1", AGENT)
    await wait_db(fake_telegram, db, "SELECT status = 'resolved' FROM tickets WHERE id = 1")
    await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF)[thread_id].closed)

    fake_telegram.group_text(STAFF, "/reopen 1", AGENT)
    await fake_telegram.wait_for(said("Ticket #1 reopened"))
    assert tickets(db)[0]["status"] == "active"
    assert not fake_telegram.topics(STAFF)[thread_id].closed

    # Reopened means handed over again: the customer's messages go to the same topic.
    n_llm = len(fake_llm.requests)
    fake_telegram.user_text(CUSTOMER.id, "still broken", CUSTOMER)
    await fake_telegram.wait_for(
        lambda: any(
            "still broken" in m.get("text", "") for m in staff_messages(fake_telegram, thread_id)
        )
    )
    # Asking for a person again joins the reopened ticket instead of opening a second one.
    fake_telegram.user_text(CUSTOMER.id, "/human", CUSTOMER)
    await fake_telegram.wait_for(
        lambda: any("already with our team" in t for t in fake_telegram.sent_messages(CUSTOMER.id))
    )
    assert len(fake_llm.requests) == n_llm
    assert [(t["id"], t["status"]) for t in tickets(db)] == [(1, "active")]
    assert len(fake_telegram.topics(STAFF)) == 1


async def test_reopen_refused_while_the_customer_has_another_open_ticket(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, thread_id = await open_ticket_in_forum(fake_telegram, fake_llm, make_settings, start_bot)
    fake_telegram.group_text(STAFF, "/close", AGENT, thread_id)
    await wait_db(fake_telegram, db, "SELECT status = 'resolved' FROM tickets WHERE id = 1")
    fake_telegram.user_text(CUSTOMER.id, "/human", CUSTOMER)
    await wait_db(fake_telegram, db, "SELECT COUNT(*) = 2 FROM tickets")
    fake_telegram.group_text(STAFF, "/reopen 1", AGENT)
    await fake_telegram.wait_for(
        lambda: any(
            "cannot be reopened" in m.get("text", "") for m in staff_messages(fake_telegram)
        )
    )
    assert [(t["id"], t["status"]) for t in tickets(db)] == [(1, "resolved"), (2, "open")]


async def test_staff_commands_from_a_private_chat_change_nothing(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, thread_id = await open_ticket_in_forum(fake_telegram, fake_llm, make_settings, start_bot)
    before = [tuple(t) for t in tickets(db)]
    staff_before = len(staff_messages(fake_telegram))
    customer_before = fake_telegram.sent_messages(CUSTOMER.id)
    for command in ("/close 1", "/tickets", "/claim 1", "/ticket 1", "/reopen 1", "/note hi"):
        fake_telegram.user_text(OTHER.id, command, OTHER)
    fake_telegram.callback_query(OTHER.id, OTHER, "staff:close:1", 1)
    forged_claim = fake_telegram.callback_query(OTHER.id, OTHER, "staff:claim:1", 1)
    await fake_telegram.wait_for(lambda: fake_telegram.callback_answer(forged_claim))
    await settled(fake_telegram)

    assert [tuple(t) for t in tickets(db)] == before
    assert not fake_telegram.topics(STAFF)[thread_id].closed
    assert fake_telegram.sent_messages(CUSTOMER.id) == customer_before
    leaked = " ".join(fake_telegram.sent_messages(OTHER.id))
    for secret in ("Alice", "#1", "user_request", "open ticket", "talk to a human", "closed"):
        assert secret not in leaked
    # What the stranger wrote may reach the ticket list only as their own messages, never as staff.
    assert len(staff_messages(fake_telegram)) == staff_before
    assert rows(db, "SELECT COUNT(*) FROM messages WHERE role IN ('staff', 'note')")[0][0] == 0


async def test_a_forged_rating_for_someone_elses_ticket_is_ignored(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, thread_id = await open_ticket_in_forum(fake_telegram, fake_llm, make_settings, start_bot)
    fake_telegram.group_text(STAFF, "/close", AGENT, thread_id)
    await wait_db(fake_telegram, db, "SELECT status = 'resolved' FROM tickets WHERE id = 1")
    forged = fake_telegram.callback_query(OTHER.id, OTHER, "rate:1:1", 1)
    await fake_telegram.wait_for(lambda: fake_telegram.callback_answer(forged))
    assert tickets(db)[0]["rating"] is None
    assert rows(db, "SELECT COUNT(*) FROM ticket_events WHERE event = 'rated'")[0][0] == 0
    # Out-of-range ratings from the owner are ignored too; a real one is kept.
    odd = fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, "rate:1:9", 1)
    await fake_telegram.wait_for(lambda: fake_telegram.callback_answer(odd))
    assert tickets(db)[0]["rating"] is None
    fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, "rate:1:5", 1)
    await wait_db(fake_telegram, db, "SELECT rating = 5 FROM tickets WHERE id = 1")


async def test_stats_and_reload_only_for_admins(fake_telegram, fake_llm, make_settings, start_bot):
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(
        fake_telegram, fake_llm, STAFF_CHAT_ID=str(STAFF), ADMIN_USER_IDS=str(ADMIN.id)
    )
    await start_bot(settings)
    fake_telegram.group_text(STAFF, "/stats", AGENT, is_forum=True)
    fake_telegram.group_text(STAFF, "/reload", AGENT, is_forum=True)
    fake_telegram.user_text(OTHER.id, "/stats", OTHER)
    fake_telegram.user_text(OTHER.id, "/reload", OTHER)
    await settled(fake_telegram)
    assert staff_messages(fake_telegram) == []
    assert all(
        "Escalations" not in t and "Knowledge version" not in t
        for t in fake_telegram.sent_messages(OTHER.id)
    )

    fake_telegram.user_text(ADMIN.id, "/stats", ADMIN)
    stats = await fake_telegram.wait_for_messages(ADMIN.id, 1)
    assert "Escalations by reason" in stats[0]
    fake_telegram.user_text(ADMIN.id, "/reload", ADMIN)
    reloaded = await fake_telegram.wait_for_messages(ADMIN.id, 2)
    assert "Knowledge version" in reloaded[1]
    fake_telegram.group_text(STAFF, "/stats", ADMIN, is_forum=True)
    await fake_telegram.wait_for(
        lambda: any(
            "Escalations by reason" in m.get("text", "") for m in staff_messages(fake_telegram)
        )
    )


async def test_customer_buttons_pressed_in_a_group_open_nothing(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, _ = await open_ticket_in_plain_group(fake_telegram, fake_llm, make_settings, start_bot)
    card = staff_messages(fake_telegram)[0]
    pressed = fake_telegram.callback_query(STAFF, AGENT, "human", card["message_id"])
    await fake_telegram.wait_for(lambda: fake_telegram.callback_answer(pressed))
    rated = fake_telegram.callback_query(STAFF, AGENT, "rate:1:1", card["message_id"])
    await fake_telegram.wait_for(lambda: fake_telegram.callback_answer(rated))
    await settled(fake_telegram)
    assert [(t["id"], t["chat_id"], t["rating"]) for t in tickets(db)] == [(1, CUSTOMER.id, None)]
    assert len(staff_messages(fake_telegram)) == 1
