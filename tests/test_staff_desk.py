"""The staff desk end to end: a ticket's topic (or card), relays both ways, close, rate, reopen.

Everything goes through python-telegram-bot against the Bot API double and the LLM double;
the database is read directly to see what was stored, as an operator would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.knowledge.loader import faq_paths, load_faq, load_persona
from tests.fakes import TgUser
from tests.helpers import all_handled, button_data, database, rows, run_main, tickets, tune

# Bots started as processes find the shipped FAQ's vectors already made.
pytestmark = pytest.mark.usefixtures("warm_vector_cache")

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


def llm_saw(request: dict) -> str:
    return "\n".join(str(m.get("content") or "") for m in request["messages"])


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
    assert button_data(card) == ["staff:claim:1", "staff:close:1"]
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
    await all_handled(fake_telegram, db)
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
    await all_handled(fake_telegram, db)
    assert all("VIP" not in t for t in fake_telegram.sent_messages(CUSTOMER.id))

    # /close resolves, closes the topic, tells the customer and asks for a rating.
    before = len(fake_telegram.bot_messages(CUSTOMER.id))
    fake_telegram.group_text(STAFF, "/close", AGENT, thread_id)
    await fake_telegram.wait_for_messages(CUSTOMER.id, before + 2)
    closing = fake_telegram.bot_messages(CUSTOMER.id)[before:]
    assert "resolved" in closing[0]["text"]
    assert button_data(closing[1]) == [f"rate:1:{n}" for n in range(1, 6)]
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
    await all_handled(fake_telegram, db)
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
    assert "Ticket #1" in card["text"] and button_data(card) == ["staff:claim:1", "staff:close:1"]
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
    await all_handled(fake_telegram, db)
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
    await all_handled(fake_telegram, db)
    assert len(fake_telegram.sent_messages(CUSTOMER.id)) == 3

    # /close as a reply to the card: resolved, customer told, rating buttons shown.
    fake_telegram.group_text(STAFF, "/close", AGENT, reply_to_message_id=card["message_id"])
    await fake_telegram.wait_for_messages(CUSTOMER.id, 5)
    closing = fake_telegram.bot_messages(CUSTOMER.id)[3:]
    assert "resolved" in closing[0]["text"]
    assert button_data(closing[1]) == [f"rate:1:{n}" for n in range(1, 6)]
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
    assert button_data(fake_telegram.bot_messages(CUSTOMER.id)[2]) == [
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
    await all_handled(fake_telegram, db)

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
    await all_handled(fake_telegram, database(settings))
    assert staff_messages(fake_telegram) == []
    assert all(
        "Tickets by reason" not in t and "Knowledge version" not in t
        for t in fake_telegram.sent_messages(OTHER.id)
    )

    fake_telegram.user_text(ADMIN.id, "/stats", ADMIN)
    stats = await fake_telegram.wait_for_messages(ADMIN.id, 1)
    assert "Tickets by reason" in stats[0]
    fake_telegram.user_text(ADMIN.id, "/reload", ADMIN)
    reloaded = await fake_telegram.wait_for_messages(ADMIN.id, 2)
    assert "Knowledge version" in reloaded[1]
    fake_telegram.group_text(STAFF, "/stats", ADMIN, is_forum=True)
    await fake_telegram.wait_for(
        lambda: any("Tickets by reason" in m.get("text", "") for m in staff_messages(fake_telegram))
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
    await all_handled(fake_telegram, db)
    assert [(t["id"], t["chat_id"], t["rating"]) for t in tickets(db)] == [(1, CUSTOMER.id, None)]
    assert len(staff_messages(fake_telegram)) == 1


# -- a desk staff can run all day -------------------------------------------------------------

AGENT_TWO = TgUser(id=502, first_name="Kim")


def said_in_staff(fake, text: str, thread_id: int | None = None):
    return lambda: [m for m in staff_messages(fake, thread_id) if text in m.get("text", "")]


async def test_a_second_claim_is_refused_until_forced(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, thread_id = await open_ticket_in_forum(fake_telegram, fake_llm, make_settings, start_bot)
    fake_telegram.group_text(STAFF, "/claim", AGENT, thread_id)
    await fake_telegram.wait_for(said_in_staff(fake_telegram, "Sam claimed ticket #1"))

    fake_telegram.group_text(STAFF, "/claim", AGENT_TWO, thread_id)
    refused = await fake_telegram.wait_for(said_in_staff(fake_telegram, "already claimed"))
    assert "by Sam" in refused[0]["text"] and "/claim force" in refused[0]["text"]
    assert tickets(db)[0]["assignee_id"] == AGENT.id, "a plain claim never takes a ticket over"

    fake_telegram.group_text(STAFF, "/claim force", AGENT_TWO, thread_id)
    await fake_telegram.wait_for(said_in_staff(fake_telegram, "Kim took over ticket #1 from Sam"))
    ticket = tickets(db)[0]
    assert (ticket["assignee_id"], ticket["assignee_name"]) == (AGENT_TWO.id, "Kim")
    events = rows(db, "SELECT event, actor, detail FROM ticket_events WHERE ticket_id = 1")
    assert [(e["event"], e["actor"]) for e in events if e["event"] != "escalated"] == [
        ("claimed", f"staff:{AGENT.id}"),
        ("taken_over", f"staff:{AGENT_TWO.id}"),
    ]
    assert events[-1]["detail"] == "Kim from Sam"


async def test_a_claim_is_not_a_first_response(fake_telegram, fake_llm, make_settings, start_bot):
    _, db, card = await open_ticket_in_plain_group(
        fake_telegram, fake_llm, make_settings, start_bot
    )
    fake_telegram.callback_query(STAFF, AGENT, "staff:claim:1", card["message_id"])
    await wait_db(fake_telegram, db, "SELECT status = 'active' FROM tickets WHERE id = 1")
    assert tickets(db)[0]["first_response_at"] is None

    fake_telegram.group_text(STAFF, "On it", AGENT, reply_to_message_id=card["message_id"])
    await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    await wait_db(fake_telegram, db, "SELECT first_response_at FROM tickets WHERE id = 1")


async def test_faq_command_sends_a_canned_answer(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    _, db, thread_id = await open_ticket_in_forum(fake_telegram, fake_llm, make_settings, start_bot)
    [entry] = [
        e for e in load_faq(faq_paths(knowledge_dirs[1])).entries if e.id == "damaged_parcel"
    ]
    fake_telegram.group_text(STAFF, "/faq damaged_parcel", AGENT, thread_id)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert told[1] == "👤 Support: " + entry.answer.strip()
    await fake_telegram.wait_for(said_in_staff(fake_telegram, "damaged_parcel sent", thread_id))
    stored = rows(
        db,
        "SELECT m.role, a.path, a.faq_ids FROM messages m JOIN answers a ON a.message_id = m.id "
        "WHERE m.role = 'staff'",
    )
    assert [tuple(r) for r in stored] == [("staff", "canned", "damaged_parcel")]
    ticket = tickets(db)[0]
    assert ticket["first_response_at"] and ticket["assignee_id"] == AGENT.id

    # A mistyped id says so, with the ids it might have meant, and sends nothing.
    fake_telegram.group_text(STAFF, "/faq damaged_parcle", AGENT, thread_id)
    unknown = await fake_telegram.wait_for(said_in_staff(fake_telegram, "no FAQ entry"))
    assert "damaged_parcle" in unknown[0]["text"] and "damaged_parcel" in unknown[0]["text"]
    await all_handled(fake_telegram, db)
    assert len(fake_telegram.sent_messages(CUSTOMER.id)) == 2


async def test_handback_gives_the_customer_back_to_the_bot(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, thread_id = await open_ticket_in_forum(fake_telegram, fake_llm, make_settings, start_bot)
    fake_telegram.group_text(STAFF, "/handback", AGENT, thread_id)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert "handed this conversation back to me" in told[1]
    await fake_telegram.wait_for(said_in_staff(fake_telegram, "handed back to the bot by Sam"))
    await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF)[thread_id].closed)
    ticket = tickets(db)[0]
    assert ticket["status"] == "resolved" and ticket["rating"] is None
    resolved = rows(db, "SELECT detail FROM ticket_events WHERE event = 'resolved'")
    assert [r["detail"] for r in resolved] == ["handback"]
    assert not any(
        b.startswith("rate:")
        for m in fake_telegram.bot_messages(CUSTOMER.id)
        for b in button_data(m)
    ), "no rating"

    fake_telegram.user_text(CUSTOMER.id, "How long does a refund take?", CUSTOMER)
    await fake_telegram.wait_for(
        lambda: (
            "Answer to: How long does a refund take?" in fake_telegram.sent_messages(CUSTOMER.id)
        )
    )
    assert "talk to a human" not in llm_saw(fake_llm.last_request)
    assert len(tickets(db)) == 1


async def test_waiting_customer_who_asks_for_a_person_upgrades_the_ticket_once(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    """No model: each unanswerable question would once have been an escalation of its own."""
    tune(knowledge_dirs[0], choices="0")  # unsure means a ticket here, not entries to pick
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(fake_telegram, None, STAFF_CHAT_ID=str(STAFF))
    await start_bot(settings)
    db = settings.storage.database_path
    fake_telegram.user_text(CUSTOMER.id, "zqx vortal plimb 0", CUSTOMER)
    await wait_db(fake_telegram, db, "SELECT COUNT(*) FROM tickets")
    thread_id = next(iter(await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF))))
    for n in range(1, 10):
        fake_telegram.user_text(CUSTOMER.id, f"zqx vortal plimb {n}", CUSTOMER)
    fake_telegram.user_text(CUSTOMER.id, "I want to talk to a human", CUSTOMER)
    await fake_telegram.wait_for(said_in_staff(fake_telegram, "talk to a human", thread_id))

    [ticket] = tickets(db)
    assert ticket["reason"] == "user_request"
    events = rows(db, "SELECT reason FROM ticket_events WHERE event = 'escalated'")
    assert [e["reason"] for e in events] == ["low_confidence", "user_request"]
    await fake_telegram.wait_for(
        lambda: (
            fake_telegram.topics(STAFF)[thread_id].name == "#1 · Alice Archer · Asked for a person"
        )
    )
    stats = run_main((Path(settings.env.config_dir), Path(settings.env.faq_dir)), Path(db), "stats")
    assert "Handed to staff: 1" in stats.stdout
    assert "Tickets by reason: user_request 1" in stats.stdout


async def test_card_lists_the_customers_earlier_tickets(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, card = await open_ticket_in_plain_group(
        fake_telegram, fake_llm, make_settings, start_bot
    )
    fake_telegram.group_text(STAFF, "/close", AGENT, reply_to_message_id=card["message_id"])
    await wait_db(fake_telegram, db, "SELECT status = 'resolved' FROM tickets WHERE id = 1")
    fake_telegram.user_text(OTHER.id, "I want to talk to a human", OTHER)
    await wait_db(fake_telegram, db, "SELECT COUNT(*) = 2 FROM tickets")
    fake_telegram.user_text(CUSTOMER.id, "/human", CUSTOMER)
    new_card = (await fake_telegram.wait_for(said_in_staff(fake_telegram, "Ticket #3")))[0]
    earlier = new_card["text"].split("Earlier tickets of this customer (1):")[1]
    day = tickets(db)[0]["created_at"][:10]
    assert f"#1 · {day} · Asked for a person · resolved" in earlier
    assert "#2" not in earlier, "another customer's ticket is not this customer's history"
    other_card = [m for m in staff_messages(fake_telegram) if "Ticket #2" in m.get("text", "")]
    assert "Earlier tickets" not in other_card[0]["text"]


async def test_tickets_search(fake_telegram, fake_llm, make_settings, start_bot):
    _, db, card = await open_ticket_in_plain_group(
        fake_telegram, fake_llm, make_settings, start_bot
    )
    fake_telegram.user_text(CUSTOMER.id, "The kettle lid is cracked", CUSTOMER)
    await fake_telegram.wait_for(said_in_staff(fake_telegram, "kettle lid"))
    fake_telegram.user_text(OTHER.id, "I want to talk to a human", OTHER)
    await wait_db(fake_telegram, db, "SELECT COUNT(*) = 2 FROM tickets")

    for term, expected in (("kettle", ["#1"]), ("@alice", ["#1"]), ("mallory", ["#2"])):
        fake_telegram.group_text(STAFF, f"/tickets {term}", AGENT)
        found = (await fake_telegram.wait_for(said_in_staff(fake_telegram, f"matching “{term}”")))[
            0
        ]["text"]
        listed = [line.split(" · ")[0] for line in found.splitlines()[1:]]
        assert listed == expected, (term, found)
    for term in ("nothing-like-this", "%", "_"):  # a wildcard is a character to find
        fake_telegram.group_text(STAFF, f"/tickets {term}", AGENT)
        await fake_telegram.wait_for(said_in_staff(fake_telegram, f"No tickets match “{term}”"))


async def test_the_claim_button_refuses_a_colleagues_ticket(
    fake_telegram, fake_llm, make_settings, start_bot
):
    _, db, card = await open_ticket_in_plain_group(
        fake_telegram, fake_llm, make_settings, start_bot
    )
    fake_telegram.callback_query(STAFF, AGENT, "staff:claim:1", card["message_id"])
    await fake_telegram.wait_for(said_in_staff(fake_telegram, "Sam claimed ticket #1"))
    pressed = fake_telegram.callback_query(STAFF, AGENT_TWO, "staff:claim:1", card["message_id"])
    answer = await fake_telegram.wait_for(lambda: fake_telegram.callback_answer(pressed))
    assert "already claimed by Sam" in answer["text"]
    again = fake_telegram.callback_query(STAFF, AGENT, "staff:claim:1", card["message_id"])
    assert (
        "already yours"
        in (await fake_telegram.wait_for(lambda: fake_telegram.callback_answer(again)))["text"]
    )
    assert tickets(db)[0]["assignee_id"] == AGENT.id
    assert len(said_in_staff(fake_telegram, "claimed ticket #1")()) == 1


async def test_a_chargeback_while_waiting_makes_the_ticket_sensitive(
    fake_telegram, make_settings, start_bot
):
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(fake_telegram, None, STAFF_CHAT_ID=str(STAFF))
    await start_bot(settings)
    db = settings.storage.database_path
    fake_telegram.user_text(CUSTOMER.id, "I want to talk to a human", CUSTOMER)
    thread_id = next(iter(await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF))))
    fake_telegram.user_text(CUSTOMER.id, "or I file a chargeback today", CUSTOMER)
    await fake_telegram.wait_for(said_in_staff(fake_telegram, "file a chargeback", thread_id))
    await fake_telegram.wait_for(
        lambda: fake_telegram.topics(STAFF)[thread_id].name == "#1 · Alice Archer · Sensitive topic"
    )
    assert tickets(db)[0]["reason"] == "keyword"
    fake_telegram.user_text(CUSTOMER.id, "let me talk to an actual person", CUSTOMER)
    await fake_telegram.wait_for(said_in_staff(fake_telegram, "an actual person", thread_id))
    assert tickets(db)[0]["reason"] == "keyword", "a weaker reason never replaces a stronger one"
    events = rows(db, "SELECT reason FROM ticket_events WHERE event = 'escalated'")
    assert [e["reason"] for e in events] == ["user_request", "keyword"]


async def test_a_customer_who_writes_chinese_hears_the_team_in_the_personas_chinese(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    shipped = load_persona(knowledge_dirs[0] / "persona.yaml")
    persona = shipped.speaking("zh")
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(fake_telegram, fake_llm, STAFF_CHAT_ID=str(STAFF))
    bot = await start_bot(settings)
    fake_telegram.user_text(CUSTOMER.id, "我想找人工客服", CUSTOMER)
    (told,) = await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    assert told == persona.message("handoff_opened", ticket_id=1)
    topics = await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF))
    thread_id = next(iter(topics))
    # The card says which language to answer in, though the app told none.
    card = (await fake_telegram.wait_for(lambda: staff_messages(fake_telegram, thread_id)))[0]
    assert shipped.staff_message("card_language", language="zh") in card["text"]
    fake_telegram.group_text(STAFF, "您好，我来帮您看看。", AGENT, thread_id)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert told[1] == persona.message("staff_reply_prefix") + "您好，我来帮您看看。"
    # Restarted before staff close: the language is read back from the stored messages.
    await bot.stop()
    await start_bot(settings)
    fake_telegram.group_text(STAFF, "/close", AGENT, thread_id)
    told = await fake_telegram.wait_for_messages(CUSTOMER.id, 4)
    assert told[2:] == [
        persona.message("ticket_closed", ticket_id=1),
        persona.message("rating_prompt", ticket_id=1),
    ]
    # Staff read their own texts as written, whatever the customer's language.
    closed = shipped.staff_message("closed", ticket_id=1, agent="Sam")
    await fake_telegram.wait_for(
        lambda: any(m.get("text") == closed for m in staff_messages(fake_telegram, thread_id))
    )
