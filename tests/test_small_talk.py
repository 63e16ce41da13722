"""Small talk is answered by the persona and never becomes a ticket; questions still are questions.

The classifier is checked on its own in every language the bot claims, then the
whole bot runs in FAQ-only mode with a staff desk against the Bot API double.
"""

from __future__ import annotations

import pytest

from bot.knowledge.sentence_model import load_model
from bot.small_talk import ACK, EMOJI, FAREWELL, GIBBERISH, GREETING, THANKS, SmallTalk
from tests.helpers import database, faq_answer, handled, persona_message, rows, tickets, tune

STAFF = -1009100
CUSTOMER = 4101

SMALL_TALK = {
    GREETING: [
        "Hi",
        "hello!",
        "Good morning",
        "你好",
        "Hallo",
        "¡Hola!",
        "Bonjour",
        "Привет",
        "こんにちは",
        "Olá",
        "Ciao",
        "مرحبا",
        "Merhaba",
        "Dzień dobry",
    ],
    THANKS: [
        "thanks!",
        "Thank you very much.",
        "谢谢",
        "Danke schön",
        "gracias",
        "Merci beaucoup",
        "Спасибо!",
        "ありがとうございます",
        "Obrigado",
        "Grazie mille",
        "شكرا",
        "Teşekkürler",
        "Dziękuję",
        "ok thanks",
    ],
    ACK: ["ok", "OK.", "yes", "got it", "好的", "alles klar", "vale", "d'accord", "хорошо", "はい"],
    FAREWELL: ["bye", "Tschüss", "adiós", "au revoir", "пока", "再见", "arrivederci"],
    EMOJI: ["👍", "🙂🙂", "🙏 👍"],
}
QUESTIONS = [
    "hi, how long do refunds take?",
    "How long do refunds take?",
    "thanks, where is my order?",
    "ok but my parcel never arrived",
    "Hallo, wo ist meine Bestellung?",
    "你好，退款需要多久？",
    "4711",
    "order 4711",
    "I want to talk to a human",
]


@pytest.mark.parametrize(("kind", "text"), [(k, t) for k, ts in SMALL_TALK.items() for t in ts])
async def test_listed_small_talk_is_recognised_without_the_model(kind, text):
    assert await SmallTalk(None).classify(text) == kind


@pytest.mark.parametrize("text", QUESTIONS)
async def test_questions_are_not_small_talk(text):
    assert await SmallTalk(None).classify(text) is None
    assert await SmallTalk(load_model()).classify(text) is None


@pytest.mark.parametrize("text", ["asdfghjkl", "sdkjfhskdjfh", "???", "...", "qwer qwer"])
async def test_keyboard_mash_is_gibberish(text):
    assert await SmallTalk(None).classify(text) == GIBBERISH


@pytest.mark.parametrize("text", ["strengths", "rhythm", "Straße", "Bestellung", "hahaha no"])
async def test_real_words_are_not_gibberish(text):
    assert await SmallTalk(None).classify(text) != GIBBERISH


async def test_the_model_catches_unlisted_small_talk():
    model = load_model()
    if model is None:
        pytest.skip("the bundled sentence model is not installed here")
    small_talk = SmallTalk(model)
    assert await small_talk.classify("thank you, this helped a lot") == THANKS
    assert await small_talk.classify("good evening Nora") == GREETING
    assert await small_talk.classify("谢谢你们的帮助") == THANKS
    # Where the FAQ's words already answer a message, only the phrase lists are asked.
    assert await small_talk.classify("thank you, this helped a lot", by_meaning=False) is None
    assert await small_talk.classify("thanks!", by_meaning=False) == THANKS


async def test_small_talk_opens_no_ticket_and_questions_still_get_answers(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, faq = knowledge_dirs
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(fake_telegram, STAFF_CHAT_ID=str(STAFF))  # FAQ only
    await start_bot(settings)
    expected = {
        "Hi": persona_message(config, "small_talk_greeting"),
        "thanks!": persona_message(config, "small_talk_thanks"),
        "ok": persona_message(config, "small_talk_ack"),
        "👍": persona_message(config, "small_talk_ack"),
    }
    sent = 0
    for text in ["Hi", "thanks!", "ok", "👍", "ok", "ok"]:
        update = fake_telegram.user_text(CUSTOMER, text)
        await handled(fake_telegram, settings, update)
        sent += 1
        told = await fake_telegram.wait_for_messages(CUSTOMER, sent)
        assert told[-1] == expected[text]
    assert tickets(database(settings)) == [], "small talk is not a ticket, not even said thrice"
    assert fake_telegram.bot_messages(STAFF) == []

    fake_telegram.user_text(CUSTOMER, "Hi")
    fake_telegram.user_text(CUSTOMER, "How long do refunds take?")
    told = await fake_telegram.wait_for_messages(CUSTOMER, sent + 2)
    assert told[-1] == faq_answer(faq, "refund_time")
    assert tickets(database(settings)) == []
    paths = [r["path"] for r in rows(database(settings), "SELECT path FROM answers")]
    assert paths.count("small_talk") == sent + 1 and "faq" in paths


async def test_gibberish_is_asked_to_rephrase_once(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    tune(knowledge_dirs[0], choices="0")  # unsure means a ticket here, not entries to pick
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(fake_telegram, STAFF_CHAT_ID=str(STAFF))
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "asdfghjkl")
    told = await fake_telegram.wait_for_messages(CUSTOMER, 1)
    assert told[0] == persona_message(config, "rephrase")
    assert tickets(database(settings)) == []
    fake_telegram.user_text(CUSTOMER, "sdkjfhskdjfh")
    told = await fake_telegram.wait_for_messages(CUSTOMER, 2, timeout=30)  # examples embed once
    assert told[1] != persona_message(config, "rephrase"), "the second time takes the normal way"
    assert len(tickets(database(settings))) == 1


async def test_small_talk_during_a_ticket_goes_to_staff(fake_telegram, make_settings, start_bot):
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(fake_telegram, STAFF_CHAT_ID=str(STAFF))
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "I want to talk to a human")
    await fake_telegram.wait_for_messages(CUSTOMER, 1)
    fake_telegram.user_text(CUSTOMER, "thanks!")
    await fake_telegram.wait_for(
        lambda: any("thanks!" in m.get("text", "") for m in fake_telegram.bot_messages(STAFF))
    )
    assert len(fake_telegram.sent_messages(CUSTOMER)) == 1, "the bot does not answer for staff"
