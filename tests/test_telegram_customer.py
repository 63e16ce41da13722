"""The customer's side of the bot, end to end through python-telegram-bot.

The bot runs against the Bot API double and the LLM double over real HTTP and is
configured only through environment variables; what it stored is read back from
its SQLite file, as an operator would.
"""

from __future__ import annotations

import logging
import time

import yaml

from bot.answers import choice_label
from bot.knowledge.loader import faq_paths, load_faq
from bot.outcome import read_choice
from tests.fakes import Reply
from tests.helpers import buttons, database, faq_answer, handled, persona_message, rows, tune

CUSTOMER = 4001
OTHER = 4002


def errors_logged(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -- commands ---------------------------------------------------------------------------


async def test_start_and_help_use_the_persona(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "/start")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1)
    assert texts[0] == persona_message(config, "start", first_name=f"Customer{CUSTOMER}")
    fake_telegram.user_text(CUSTOMER, "/help")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 2)
    assert texts[1] == persona_message(config, "help")
    assert fake_llm.requests == [], "commands must not cost a model call"


# -- answers with the model ---------------------------------------------------------------


async def test_question_answered_by_the_model_with_persona_and_faq(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    instructions = yaml.safe_load((config / "persona.yaml").read_text(encoding="utf-8"))[
        "instructions"
    ]
    fake_llm.script("Refunds take 5 to 10 working days once the return arrives.")
    await start_bot(make_settings(fake_telegram, fake_llm))
    question = "How long does a refund take?"
    fake_telegram.user_text(CUSTOMER, question)
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1)
    assert texts == ["Refunds take 5 to 10 working days once the return arrives."]

    messages = fake_llm.last_request["messages"]
    system = messages[0]
    assert system["role"] == "system"
    assert instructions.strip() in system["content"]
    assert 'faq id="refund_time"' in system["content"]
    assert question not in system["content"], "customer text leaked into the instructions"
    assert messages[1:] == [{"role": "user", "content": question}]

    answer = fake_telegram.bot_messages(CUSTOMER)[0]
    labels = [label for label, _ in buttons(answer)]
    assert labels == ["👍", "👎"]


async def test_second_turn_sees_the_first_as_history(
    fake_telegram, fake_llm, make_settings, start_bot
):
    fake_llm.script("First answer about refunds.", "Second answer about shipping.")
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "How long does a refund take?")
    await fake_telegram.wait_for_messages(CUSTOMER, 1)
    fake_telegram.user_text(CUSTOMER, "And how fast do you ship?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 2)
    assert texts == ["First answer about refunds.", "Second answer about shipping."]
    assert fake_llm.last_request["messages"][1:] == [
        {"role": "user", "content": "How long does a refund take?"},
        {"role": "assistant", "content": "First answer about refunds."},
        {"role": "user", "content": "And how fast do you ship?"},
    ]


async def test_reset_forgets_earlier_turns(fake_telegram, fake_llm, make_settings, start_bot):
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "How long does a refund take?")
    await fake_telegram.wait_for_messages(CUSTOMER, 1)
    fake_telegram.user_text(CUSTOMER, "/reset")
    await fake_telegram.wait_for_messages(CUSTOMER, 2)
    fake_telegram.user_text(CUSTOMER, "Do you ship to Austria?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 3)
    assert texts[2] == "Answer to: Do you ship to Austria?"
    assert len(fake_llm.requests) == 2
    first, second = fake_llm.requests
    assert len(first["messages"]) == 2
    assert second["messages"][1:] == [{"role": "user", "content": "Do you ship to Austria?"}]
    assert "refund take" not in str(second["messages"])


async def test_long_answer_split_on_paragraphs_without_loss(
    fake_telegram, fake_llm, make_settings, start_bot
):
    # Paragraphs of different lengths, about 9,000 characters in all.
    paragraphs = [
        f"Paragraph {p}. " + " ".join(f"detail{p}_{w} is explained here." for w in range(12 + p))
        for p in range(16)
    ]
    answer = "\n\n".join(paragraphs)
    assert 8500 < len(answer) < 10000
    fake_llm.script(answer)
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "Tell me everything about your policies")
    await fake_telegram.wait_for(
        lambda: sum(len(t) for t in fake_telegram.sent_messages(CUSTOMER)) >= len(answer) - 100
    )
    texts = fake_telegram.sent_messages(CUSTOMER)
    assert len(texts) >= 3
    assert all(len(t) <= 4096 for t in texts)
    for text in texts:
        # Every message is made of whole paragraphs.
        assert all(part in paragraphs for part in text.split("\n\n")), text[:80]
    assert "".join("".join(texts).split()) == "".join(answer.split())
    assert "\n\n".join(texts) == answer
    # The feedback buttons sit under the last part only.
    messages = fake_telegram.bot_messages(CUSTOMER)
    assert [bool(buttons(m)) for m in messages] == [False] * (len(messages) - 1) + [True]


# -- answers without a model -------------------------------------------------------------


async def test_faq_only_answers_known_questions_and_offers_likely_entries_for_others(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, faq = knowledge_dirs
    settings = make_settings(fake_telegram)
    assert not settings.env.llm_configured
    await start_bot(settings)
    db = database(settings)
    fake_telegram.user_text(CUSTOMER, "How can I return an item?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1)
    assert texts[0] == faq_answer(faq, "how_to_return")

    # Unsure: the likeliest entries, one per row, and a person beside them; no ticket yet.
    fake_telegram.user_text(CUSTOMER, "Which pottery glaze suits a volcanic teapot best?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 2)
    assert texts[1] == persona_message(config, "faq_choices")
    offer = fake_telegram.bot_messages(CUSTOMER)[1]
    rows_of_buttons = offer["reply_markup"]["inline_keyboard"]
    choices = [row[0] for row in rows_of_buttons[:-1]]
    assert 1 <= len(choices) <= 3 and all(len(row) == 1 for row in rows_of_buttons[:-1])
    assert all(b["callback_data"].startswith("faq:") for b in choices)
    assert [b["callback_data"] for b in rows_of_buttons[-1]] == ["human"]
    assert rows(db, "SELECT * FROM tickets") == []

    # A press answers with that entry, and the pick is stored as the customer's message.
    picked = read_choice(choices[0]["callback_data"])
    assert picked is not None
    entry_id = picked[1]
    press = fake_telegram.callback_query(
        CUSTOMER, CUSTOMER, choices[0]["callback_data"], offer["message_id"]
    )
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 3)
    assert texts[2] == faq_answer(faq, entry_id)
    assert fake_telegram.callback_answer(press) is not None
    stored = rows(
        db, "SELECT role, kind, text FROM messages WHERE chat_id = ? ORDER BY id", CUSTOMER
    )
    assert tuple(stored[-2]) == ("customer", "choice", choices[0]["text"])
    assert [tuple(r) for r in rows(db, "SELECT path FROM answers ORDER BY message_id")] == [
        ("faq",),
        ("choices",),
        ("faq",),
    ]

    # The person button still hands over.
    fake_telegram.callback_query(CUSTOMER, CUSTOMER, "human", offer["message_id"])
    await fake_telegram.wait_for_messages(CUSTOMER, 4)
    tickets = rows(db, "SELECT * FROM tickets")
    assert len(tickets) == 1 and tickets[0]["chat_id"] == CUSTOMER


async def test_a_pick_answers_in_the_language_the_question_was_asked_in(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    _, faq = knowledge_dirs
    settings = make_settings(fake_telegram)
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "etwas wegen meinem Paket und dem Etikett")
    await fake_telegram.wait_for_messages(CUSTOMER, 1)
    offer = fake_telegram.bot_messages(CUSTOMER)[0]
    pick = offer["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert pick.startswith("faq:de:"), pick
    choice = read_choice(pick)
    assert choice is not None and choice[0] == "de"
    entry = load_faq(faq_paths(faq)).by_id(choice[1])
    assert entry is not None
    # The button reads the question in German too.
    label = offer["reply_markup"]["inline_keyboard"][0][0]["text"]
    assert label == choice_label(entry.question_in("de")) != choice_label(entry.question)
    fake_telegram.callback_query(CUSTOMER, CUSTOMER, pick, offer["message_id"])
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 2)
    assert entry.answer_in("de") != entry.answer
    assert texts[1] == entry.answer_in("de").strip()


async def test_faq_only_without_choices_admits_unknown_questions(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    tune(config, choices="0")
    settings = make_settings(fake_telegram)
    assert settings.retrieval.choices == 0
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "Which pottery glaze suits a volcanic teapot best?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1)
    assert texts[0].startswith(persona_message(config, "no_answer_unavailable"))
    tickets = rows(database(settings), "SELECT * FROM tickets")
    assert len(tickets) == 1
    assert tickets[0]["chat_id"] == CUSTOMER
    assert tickets[0]["reason"] == "low_confidence"
    assert f"#{tickets[0]['id']}" in texts[0]


# -- media, edits, commands for others, groups ---------------------------------------------


async def test_photo_without_words_and_sticker_get_truthful_notices(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_photo(CUSTOMER)
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1)
    assert texts == [persona_message(config, "media_no_vision")]
    fake_telegram.user_sticker(CUSTOMER)
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 2)
    assert texts[1] == persona_message(config, "unsupported_media")
    person = persona_message(config, "talk_to_person_button")
    for message in fake_telegram.bot_messages(CUSTOMER):
        assert [label for label, _ in buttons(message)] == [person]
    assert fake_llm.requests == []


async def test_edited_message_is_not_answered_again(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "Where is my parcel?")
    await fake_telegram.wait_for_messages(CUSTOMER, 1)
    asked = 1  # the first message of a private chat
    assert fake_telegram.message(CUSTOMER, asked)["text"] == "Where is my parcel?"
    update = fake_telegram.edited_text(CUSTOMER, asked, "Where is my parcel, order 1234?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 2)
    await handled(fake_telegram, settings, update)
    assert texts[1] == persona_message(config, "edited_ignored")
    assert len(fake_llm.requests) == 1


async def test_command_for_another_bot_is_not_start(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "/start@otherbot")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1)
    greeting = persona_message(config, "start", first_name=f"Customer{CUSTOMER}")
    assert greeting not in texts
    # Our own name still works.
    fake_telegram.user_text(CUSTOMER, f"/start@{fake_telegram.bot_user['username']}")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 2)
    assert texts[1] == greeting


async def test_message_in_a_random_group_is_ignored(
    fake_telegram, fake_llm, make_settings, start_bot
):
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    update = fake_telegram.group_text(-100777, "How long does a refund take?", 4100)
    await handled(fake_telegram, settings, update)
    command = fake_telegram.group_text(-100777, "/start", 4100)
    await handled(fake_telegram, settings, command)
    assert fake_telegram.sent_messages(-100777) == []
    assert fake_llm.requests == []
    assert rows(database(settings), "SELECT * FROM messages WHERE chat_id = -100777") == []


# -- concurrency and order ----------------------------------------------------------------


async def test_two_chats_are_answered_concurrently(
    fake_telegram, fake_llm, make_settings, start_bot
):
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_llm.hold_until(2)
    fake_telegram.user_text(CUSTOMER, "How long does a refund take?")
    fake_telegram.user_text(OTHER, "Do you ship to Austria?")
    assert await fake_telegram.wait_for_messages(CUSTOMER, 1) == [
        "Answer to: How long does a refund take?"
    ]
    assert await fake_telegram.wait_for_messages(OTHER, 1) == ["Answer to: Do you ship to Austria?"]
    assert fake_llm.max_in_flight == 2


async def test_quick_messages_in_one_chat_are_answered_in_order(
    fake_telegram, fake_llm, make_settings, start_bot
):
    # Earlier questions take longer, so answering them side by side would reorder the replies.
    delays = {f"question {n}": 0.05 * (5 - n) for n in range(1, 6)}

    def responder(request: dict) -> Reply:
        text = request["messages"][-1]["content"]
        return Reply.text(f"answer {text}").after(delays[text])

    fake_llm.responder = responder
    await start_bot(make_settings(fake_telegram, fake_llm))
    for n in range(1, 6):
        fake_telegram.user_text(CUSTOMER, f"question {n}")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 5, timeout=15)
    assert texts == [f"answer question {n}" for n in range(1, 6)]
    assert fake_llm.max_in_flight == 1
    # Each question was asked knowing the answers before it.
    last = fake_llm.last_request["messages"]
    assert [m["content"] for m in last if m["role"] == "assistant"] == [
        f"answer question {n}" for n in range(1, 5)
    ]


async def test_fifty_chats_with_a_slow_model_are_all_answered(
    fake_telegram, fake_llm, make_settings, start_bot
):
    """Chats do not wait for each other: fifty take far less than fifty model calls in a row."""
    delay = 1.0
    fake_llm.delay = delay
    await start_bot(make_settings(fake_telegram, fake_llm))
    chats = [5000 + n for n in range(50)]
    serial = len(chats) * delay  # what one chat at a time would take, at the least
    started = time.monotonic()
    for chat in chats:
        fake_telegram.user_text(chat, f"Where is order {chat}?")
    await fake_telegram.wait_for(
        lambda: all(fake_telegram.sent_messages(c) for c in chats), timeout=serial + 10
    )
    elapsed = time.monotonic() - started
    for chat in chats:
        assert fake_telegram.sent_messages(chat) == [f"Answer to: Where is order {chat}?"]
    # About one model delay plus the bot's own work; a fifth of the serial time leaves a
    # busy 2-core machine room, and still fails if only four chats ran at once.
    assert elapsed < serial / 5, f"50 chats took {elapsed:.1f} s; one at a time is {serial:.0f} s"
    assert fake_llm.max_in_flight >= 10, "the model was asked for many chats at once"


# -- buttons ------------------------------------------------------------------------------


async def test_feedback_buttons_store_votes_and_forged_presses_do_nothing(
    fake_telegram, fake_llm, make_settings, start_bot, caplog
):
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    db = database(settings)
    fake_telegram.user_text(CUSTOMER, "How long does a refund take?")
    fake_telegram.user_text(OTHER, "Do you ship to Austria?")
    await fake_telegram.wait_for_messages(CUSTOMER, 1)
    await fake_telegram.wait_for_messages(OTHER, 1)
    mine = fake_telegram.bot_messages(CUSTOMER)[0]
    theirs = fake_telegram.bot_messages(OTHER)[0]
    up = dict((label, data) for label, data in buttons(mine))["👍"]
    stored_id = int(up.split(":")[1])

    update = fake_telegram.callback_query(CUSTOMER, CUSTOMER, up, mine["message_id"])
    await handled(fake_telegram, settings, update)
    votes = rows(db, "SELECT message_id, chat_id, helpful FROM feedback")
    assert [tuple(v) for v in votes] == [(stored_id, CUSTOMER, 1)]
    assert fake_telegram.callback_answer(update) is not None
    assert buttons(fake_telegram.bot_messages(CUSTOMER)[0]) == [], "buttons stay after a vote"

    # Another chat voting on our answer, and data nobody's button carries.
    forged = [
        (OTHER, f"fb:{stored_id}:0", theirs["message_id"]),
        (CUSTOMER, f"fb:{stored_id}:", mine["message_id"]),
        (CUSTOMER, f"fb:{stored_id}:01", mine["message_id"]),
        (CUSTOMER, "fb:99999999999999999999999:0", mine["message_id"]),
        (CUSTOMER, "fb:²:0", mine["message_id"]),
        (CUSTOMER, "fb:1", mine["message_id"]),
        (CUSTOMER, "rate:99999999999999999999999:5", mine["message_id"]),
        (CUSTOMER, "rate:1:²", mine["message_id"]),
        (CUSTOMER, "garbage\x00data", mine["message_id"]),
        (CUSTOMER, "", mine["message_id"]),
    ]
    for chat, data, message_id in forged:
        update = fake_telegram.callback_query(chat, chat, data, message_id)
        await handled(fake_telegram, settings, update)
        assert fake_telegram.callback_answer(update) is not None, data
    votes = rows(db, "SELECT message_id, chat_id, helpful FROM feedback")
    assert [tuple(v) for v in votes] == [(stored_id, CUSTOMER, 1)]
    assert rows(db, "SELECT * FROM tickets") == []
    assert errors_logged(caplog) == []
    assert fake_telegram.sent_messages(CUSTOMER) == ["Answer to: How long does a refund take?"]
    assert fake_telegram.sent_messages(OTHER) == ["Answer to: Do you ship to Austria?"]


# -- blocked customers ----------------------------------------------------------------------


async def test_blocked_customer_is_marked_and_others_still_served(
    fake_telegram, fake_llm, make_settings, start_bot, caplog
):
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    db = database(settings)
    fake_telegram.block(CUSTOMER)
    update = fake_telegram.user_text(CUSTOMER, "How long does a refund take?")
    await handled(fake_telegram, settings, update)
    blocked = rows(db, "SELECT blocked_at FROM customers WHERE chat_id = ?", CUSTOMER)
    assert blocked and blocked[0]["blocked_at"] is not None
    failed = [c for c in fake_telegram.calls("sendMessage") if c.status == 403]
    assert failed, "the bot never tried to answer"
    assert len(failed) == 1, "a blocked chat was retried"

    fake_telegram.user_text(OTHER, "Do you ship to Austria?")
    assert await fake_telegram.wait_for_messages(OTHER, 1) == ["Answer to: Do you ship to Austria?"]
    other = rows(db, "SELECT blocked_at FROM customers WHERE chat_id = ?", OTHER)
    assert other[0]["blocked_at"] is None

    # Writing again means the customer unblocked the bot.
    fake_telegram.unblock(CUSTOMER)
    fake_telegram.user_text(CUSTOMER, "Do you ship to Austria?")
    assert await fake_telegram.wait_for_messages(CUSTOMER, 1) == [
        "Answer to: Do you ship to Austria?"
    ]
    again = rows(db, "SELECT blocked_at FROM customers WHERE chat_id = ?", CUSTOMER)
    assert again[0]["blocked_at"] is None
    assert errors_logged(caplog) == []


async def test_long_answer_without_paragraphs_is_split_on_sentences(
    fake_telegram, fake_llm, make_settings, start_bot
):
    answer = " ".join(f"Sentence number {n} says something useful." for n in range(240))
    assert len(answer) > 9000 and "\n" not in answer
    fake_llm.script(answer)
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "Tell me everything")
    await fake_telegram.wait_for(
        lambda: sum(len(t) for t in fake_telegram.sent_messages(CUSTOMER)) >= len(answer) - 10
    )
    texts = fake_telegram.sent_messages(CUSTOMER)
    assert len(texts) == 3
    assert all(len(t) <= 4096 and t.endswith("useful.") for t in texts)
    assert " ".join(texts) == answer


async def test_very_long_question_is_cut_and_the_customer_told(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    settings = make_settings(fake_telegram, fake_llm)
    limit = settings.conversation.max_input_chars
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "refund " * (limit // 7 + 50))
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 2)
    assert texts[0] == persona_message(config, "message_truncated")
    assert len(fake_llm.last_request["messages"][-1]["content"]) == limit


async def test_model_calling_a_tool_it_does_not_have_still_gets_the_customer_an_answer(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs, caplog
):
    _, faq = knowledge_dirs
    fake_llm.script(Reply.tool_call("lookup_order", {"order": "1234"}))
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    update = fake_telegram.user_text(CUSTOMER, "How long does a refund take?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1)
    await handled(fake_telegram, settings, update)
    # The same answer the bot gives without a model: the confident FAQ match.
    assert texts == [faq_answer(faq, "refund_time")]
    assert errors_logged(caplog) == []
