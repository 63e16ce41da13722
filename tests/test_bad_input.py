"""Odd, hostile and unusual input through Telegram: each handled on purpose, none a traceback.

Texts are checked for an exact round trip: the customer's words as the model received
them, as stored in SQLite, and as echoed back to the Bot API double by the model double.
"""

from __future__ import annotations

import pytest

from tests.helpers import all_handled, no_errors_logged, tune, values

MEDIA_NOTICE = "I can only read text messages, sorry."
EDIT_NOTICE = "I see you edited a message."


async def test_media_edits_service_and_forwarded_messages(
    fake_telegram, fake_llm, make_settings, start_bot, caplog
):
    settings = make_settings(fake_telegram, fake_llm)
    db = settings.storage.database_path
    await start_bot(settings)
    chat = 2001
    fake_telegram.user_sticker(chat)
    fake_telegram.user_voice(chat)
    fake_telegram.user_document(chat)
    fake_telegram.user_location(chat, 52.52, 13.40)
    await fake_telegram.wait_for_messages(chat, 4)
    await all_handled(fake_telegram, db)
    told = fake_telegram.bot_messages(chat)
    # Stickers and locations cannot be read; a voice note (no transcription set up)
    # and a file without words are kept, and the customer is asked to type.
    assert [m["text"].split(",")[0].split(".")[0] for m in told] == [
        MEDIA_NOTICE.split(",")[0],
        "I can't listen to voice messages",
        "Thanks",
        MEDIA_NOTICE.split(",")[0],
    ]
    assert all(m.get("reply_markup") for m in told), "each offers a person"
    kinds = values(db, "SELECT kind FROM messages WHERE role = 'customer' ORDER BY id")
    assert kinds == [("sticker",), ("voice",), ("document",), ("location",)]
    assert fake_llm.requests == []

    # An edit is not a new question: one notice, no answer to the new text.
    fake_telegram.user_text(chat, "Where is my parcel?")
    message_id = fake_telegram._history[-1]["message"]["message_id"]
    await fake_telegram.wait_for_messages(chat, 5)
    fake_telegram.edited_text(chat, message_id, "Where is my sofa?")
    await fake_telegram.wait_for_messages(chat, 6)
    # A service message (the customer allowed the bot to write) gets no answer at all.
    fake_telegram.user_message(chat, write_access_allowed={"from_request": True})
    # A forwarded text is read as the customer's question.
    fake_telegram.user_message(
        chat,
        text="Is this offer real?",
        forward_origin={"type": "hidden_user", "date": 1700000000, "sender_user_name": "Ann"},
    )
    await fake_telegram.wait_for_messages(chat, 7)
    await all_handled(fake_telegram, db)
    texts = fake_telegram.sent_messages(chat)[4:]
    assert texts[0] == "Answer to: Where is my parcel?"
    assert texts[1].startswith(EDIT_NOTICE)
    assert texts[2] == "Answer to: Is this offer real?"
    assert len(fake_llm.requests) == 2
    no_errors_logged(caplog)


async def test_commands_for_other_bots_and_group_chatter(
    fake_telegram, fake_llm, make_settings, start_bot, caplog
):
    settings = make_settings(fake_telegram, fake_llm)
    db = settings.storage.database_path
    await start_bot(settings)
    # Not our bot's /start: no greeting; read as any other text.
    fake_telegram.user_text(2101, "/start@otherbot")
    # A group the bot was added to, where nobody addressed it: it stays quiet.
    fake_telegram.group_text(-1002222, "anyone know where my parcel is?", 2102)
    fake_telegram.group_text(-1002222, "/start", 2102)
    await fake_telegram.wait_for_messages(2101, 1)
    await all_handled(fake_telegram, db)
    assert fake_telegram.sent_messages(2101) == ["Answer to: /start@otherbot"]
    assert fake_telegram.sent_messages(-1002222) == []
    assert [r[0] for r in values(db, "SELECT chat_id FROM customers")] == [2101]
    no_errors_logged(caplog)


async def test_unknown_and_forged_buttons_do_nothing(
    fake_telegram, fake_llm, make_settings, start_bot, caplog
):
    settings = make_settings(fake_telegram, fake_llm)
    db = settings.storage.database_path
    await start_bot(settings)
    fake_telegram.user_text(2201, "Where is my parcel?")
    await fake_telegram.wait_for_messages(2201, 1)
    answer_id = values(db, "SELECT id FROM messages WHERE role = 'bot'")[0][0]
    updates = [
        fake_telegram.callback_query(2202, 2202, data, message_id=1)
        for data in (
            "nonsense",
            "",
            f"fb:{answer_id}:0",  # rating someone else's answer
            "fb:99999:1",
            "fb:1:7",
            "rate:1:5",
            "rate:abc:1",
            "staff:close:1",
            "x" * 64,
        )
    ]
    await all_handled(fake_telegram, db)
    for update_id in updates:
        assert fake_telegram.callback_answer(update_id) is not None, "every press is answered"
    assert fake_telegram.sent_messages(2202) == []
    assert values(db, "SELECT COUNT(*) FROM feedback") == [(0,)]
    assert values(db, "SELECT COUNT(*) FROM tickets") == [(0,)]
    no_errors_logged(caplog)


TRICKY = [
    "Emoji 👍🏽👨‍👩‍👧 and a flag 🇩🇪 in my question",
    "עברית \u200fmixed with العربية\u200e and English",
    "zero\u200bwidth\u200cjoiners\u200dand\ufeffBOM",
    "NUL inside \x00 the text",
    "<b>bold</b> <a href='x'>link</a> &amp; &lt;tag&gt; <script>alert(1)</script>",
    "*bold* _italic_ `code` [link](http://x) ~strike~ ||spoiler|| \\escaped",
    "{ticket_id} {office_hours} {0} {{double}} %s %(name)s $name",
    "'; DROP TABLE messages; -- and \" OR 1=1 --",
    "Robert'); DELETE FROM tickets WHERE ('1'='1",
]
# The answer is the model's Markdown, shown formatted: markup becomes entities and HTML
# stays visible text. Everything else arrives exactly as written.
SHOWN_AS = {
    TRICKY[4]: "<b>bold</b> <a href='x'>link</a> & <tag> <script>alert(1)</script>",
    TRICKY[5]: "bold italic code link ~strike~ spoiler \\escaped",
}


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
async def test_text_round_trips_exactly(
    fake_telegram, fake_llm, make_settings, start_bot, caplog, text
):
    settings = make_settings(fake_telegram, fake_llm)
    db = settings.storage.database_path
    await start_bot(settings)
    fake_telegram.user_text(2301, text)
    told = await fake_telegram.wait_for_messages(2301, 1)
    await all_handled(fake_telegram, db)
    assert told == [f"Answer to: {SHOWN_AS.get(text, text)}"]
    assert fake_llm.last_request["messages"][-1] == {"role": "user", "content": text}
    assert values(db, "SELECT text FROM messages WHERE role = 'customer'") == [(text,)]
    assert values(db, "SELECT text FROM messages WHERE role = 'bot'") == [(f"Answer to: {text}",)]
    # Sent as plain text: nothing Telegram could fail to parse.
    assert all("parse_mode" not in c.params for c in fake_telegram.calls("sendMessage"))
    assert values(db, "PRAGMA integrity_check") == [("ok",)]
    no_errors_logged(caplog)


async def test_rate_limit_gives_one_polite_notice(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    tune(knowledge_dirs[0], rate_limit_per_minute="3")
    settings = make_settings(fake_telegram, fake_llm)
    db = settings.storage.database_path
    bot = await start_bot(settings)
    bot.services.core.rate_limit.window_seconds = 2.0  # the minute, shortened
    for n in range(7):
        fake_telegram.user_text(2401, f"Message number {n} about my order")
    told = await fake_telegram.wait_for_messages(2401, 8, timeout=20)
    await all_handled(fake_telegram, db)
    answers = [f"Answer to: Message number {n} about my order" for n in range(7)]
    assert told[:3] == answers[:3]
    assert told[3].startswith("You're sending messages quickly"), "told once, at once"
    assert told[4:] == answers[3:], "the rest answered in order, none dropped"
    assert len(fake_llm.requests) == 7
    assert values(db, "SELECT COUNT(*) FROM messages WHERE role = 'customer'") == [(7,)]


async def test_long_messages_are_cut_before_the_model(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    tune(knowledge_dirs[0], max_input_chars="200")
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    text = "My order arrived damaged and " + "I am very upset about it. " * 40
    fake_telegram.user_text(2501, text)
    told = await fake_telegram.wait_for_messages(2501, 2)
    assert told[0].startswith("Your message was very long")
    assert fake_llm.last_request["messages"][-1]["content"] == text[:200]
    assert all(len(str(m["content"])) < 20000 for m in fake_llm.last_request["messages"])
