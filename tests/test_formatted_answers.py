"""Answers in Markdown reach the customer formatted, whole, and always.

The bot runs against the Bot API double, which reads explicit entities as Telegram
does (UTF-16 offsets within the text, known types, at most 100, text length in code
points), and the LLM double, over real HTTP.
"""

from __future__ import annotations

from tests.fakes import Reply
from tests.helpers import drafts_unavailable

CUSTOMER = 6001
STAFF = -1006000

ANSWER = (
    "**Refunds** take 5 to 10 working days. To start one:\n\n"
    "- open [your orders](https://shop.example/orders)\n"
    "- choose **Return** and print the label\n\n"
    "We email you when the money is on its way."
)
SHOWN = (
    "Refunds take 5 to 10 working days. To start one:\n\n"
    "⦁ open your orders\n"
    "⦁ choose Return and print the label\n\n"
    "We email you when the money is on its way."
)
SHOWN_SPANS = [("bold", "Refunds"), ("text_link", "your orders"), ("bold", "Return")]


def covered(text: str, entity: dict) -> str:
    units = text.encode("utf-16-le")
    start, end = 2 * entity["offset"], 2 * (entity["offset"] + entity["length"])
    return units[start:end].decode("utf-16-le")


def spans(message: dict) -> list[tuple[str, str]]:
    return [(e["type"], covered(message["text"], e)) for e in message.get("entities", [])]


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


async def test_a_model_answer_arrives_formatted_and_streams_formatted(
    fake_telegram, fake_llm, make_settings, start_bot
):
    fake_llm.script(Reply.text(ANSWER, chunks=24, chunk_delay=0.05))
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "How do refunds work?")
    assert await fake_telegram.wait_for_messages(CUSTOMER, 1) == [SHOWN]
    message = fake_telegram.bot_messages(CUSTOMER)[0]
    assert spans(message) == SHOWN_SPANS
    assert message["entities"][1]["url"] == "https://shop.example/orders"
    call = fake_telegram.calls("sendMessage")[-1]
    assert call.ok and "parse_mode" not in call.params
    drafts = fake_telegram.drafts(CUSTOMER)
    assert drafts, "the answer was not shown while it was written"
    final = message["entities"]
    for draft in drafts:
        # Half-written markup never shows: each draft is the final message so far, its
        # formatting where the final message has it (a bold word may still be growing).
        assert SHOWN.startswith(draft["text"]), draft["text"]
        for entity in draft["entities"]:
            assert any(
                f["type"] == entity["type"]
                and f["offset"] == entity["offset"]
                and f["length"] >= entity["length"]
                for f in final
            ), (draft, entity)
    assert any(draft["entities"] for draft in drafts)
    assert fake_telegram.calls("sendMessageDraft")[-1].ok


async def test_streaming_by_edits_keeps_the_formatting(
    fake_telegram, fake_llm, make_settings, start_bot
):
    drafts_unavailable(fake_telegram)
    fake_llm.script(Reply.text(ANSWER, chunks=30, chunk_delay=0.07))
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "How do refunds work?")
    await fake_telegram.wait_for(lambda: fake_telegram.sent_messages(CUSTOMER) == [SHOWN])
    assert spans(fake_telegram.bot_messages(CUSTOMER)[0]) == SHOWN_SPANS
    previews = [c for c in fake_telegram.calls() if c.method in ("sendMessage", "editMessageText")]
    assert all(c.ok and "*" not in c.params["text"] for c in previews)


async def test_formatting_telegram_refuses_still_delivers_the_words(
    fake_telegram, fake_llm, make_settings, start_bot
):
    fake_telegram.fail_when(
        lambda method, params: bool(params.get("entities")),
        status=400,
        description="Bad Request: can't parse entities: unsupported entity",
    )
    fake_llm.script(Reply.text(ANSWER, chunks=24, chunk_delay=0.05))
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "How do refunds work?")
    assert await fake_telegram.wait_for_messages(CUSTOMER, 1) == [SHOWN]
    assert "entities" not in fake_telegram.bot_messages(CUSTOMER)[0]
    refused, delivered = fake_telegram.calls("sendMessage")[-2:]
    assert refused.status == 400 and refused.params["entities"]
    assert delivered.ok and "entities" not in delivered.params
    assert delivered.params["text"] == refused.params["text"] == SHOWN


async def test_nine_thousand_characters_of_cyrillic_and_emoji_arrive_whole(
    fake_telegram, fake_llm, make_settings, start_bot
):
    sentence = "Посылка **уже в пути** 😀📦, курьер привезёт её завтра до обеда. "
    answer = (sentence * 160).strip()
    shown = answer.replace("**", "")
    assert len(shown) > 9000
    fake_llm.responder = lambda request: answer
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(CUSTOMER, "Где моя посылка?")
    await fake_telegram.wait_for_messages(CUSTOMER, 3, timeout=15)
    await fake_telegram.wait_for(lambda: " ".join(fake_telegram.sent_messages(CUSTOMER)) == shown)
    messages = fake_telegram.bot_messages(CUSTOMER)
    assert all(call.ok for call in fake_telegram.calls("sendMessage"))
    assert all(len(m["text"]) <= 4096 for m in messages)
    # Over 4,096 in UTF-16 units, within it in code points, as Telegram counts.
    assert any(utf16_len(m["text"]) > 4096 for m in messages)
    assert sum(len(m["entities"]) for m in messages) == 160
    assert all(text == "уже в пути" for m in messages for _, text in spans(m))


async def test_an_faq_answer_in_markdown_arrives_formatted_without_a_model(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    _, faq = knowledge_dirs
    (faq / "gifts.yaml").write_text(
        "faq:\n"
        "  - id: gift_wrapping\n"
        '    question: "Do you offer gift wrapping?"\n'
        "    answer: |\n"
        "      **Yes.** Gift wrapping costs 3 EUR an item:\n"
        "\n"
        "      1. Tick *Gift wrap* in the cart\n"
        "      2. Write your card text, see [gift options](https://shop.example/gifts)\n"
        "    tags: [gift wrapping, gift wrap, present]\n",
        encoding="utf-8",
    )
    settings = make_settings(fake_telegram)
    assert not settings.env.llm_configured
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "Do you offer gift wrapping?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER, 1)
    assert texts == [
        "Yes. Gift wrapping costs 3 EUR an item:\n\n"
        "1. Tick Gift wrap in the cart\n"
        "2. Write your card text, see gift options"
    ]
    assert spans(fake_telegram.bot_messages(CUSTOMER)[0]) == [
        ("bold", "Yes."),
        ("italic", "Gift wrap"),
        ("text_link", "gift options"),
    ]


async def test_staff_see_the_bots_answer_without_markup_on_the_ticket_card(
    fake_telegram, fake_llm, make_settings, start_bot
):
    fake_telegram.add_group(STAFF)
    fake_llm.script(Reply.text(ANSWER))
    settings = make_settings(fake_telegram, fake_llm, STAFF_CHAT_ID=str(STAFF))
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER, "How do **refunds** work?")
    await fake_telegram.wait_for_messages(CUSTOMER, 1)
    fake_telegram.user_text(CUSTOMER, "I want to talk to a human")
    card = await fake_telegram.wait_for(lambda: fake_telegram.sent_messages(STAFF))
    assert "🤖 Refunds take 5 to 10 working days." in card[0]
    assert "👤 How do **refunds** work?" in card[0]  # what customers write stays as written
    assert "entities" not in fake_telegram.bot_messages(STAFF)[0]
