"""Markdown as Telegram text + entities, and splitting that keeps formatting within the limits."""

from __future__ import annotations

import pytest
from telegram import MessageEntity

from bot.telegram.formatting import (
    MAX_ENTITIES,
    TELEGRAM_TEXT_LIMIT,
    Formatted,
    split_formatted,
    utf16_len,
)
from bot.telegram.markdown import close_open_markup, from_markdown, plain_text


def covered(message: Formatted, entity) -> str:
    """The text an entity covers, read the way Telegram reads offsets: in UTF-16 units."""
    units = message.text.encode("utf-16-le")
    return units[2 * entity.offset : 2 * (entity.offset + entity.length)].decode("utf-16-le")


def spans(message: Formatted) -> list[tuple[str, str]]:
    return [(e.type, covered(message, e)) for e in message.entities]


def assert_accepted_by_telegram(message: Formatted) -> None:
    assert 0 < len(message.text) <= TELEGRAM_TEXT_LIMIT
    assert len(message.entities) <= MAX_ENTITIES
    for entity in message.entities:
        assert entity.offset >= 0 and entity.length > 0
        assert entity.offset + entity.length <= utf16_len(message.text)


# ------------------------------------------------------------------------ converting


def test_model_markdown_becomes_entities():
    message = from_markdown(
        "**Refunds** take *5 days*. Use `ORDER-1`:\n\n"
        "- pack the item\n- print the label\n\n"
        "1. Open [your orders](https://shop.example/orders)\n2. Click ~~Cancel~~ Return\n\n"
        "> Keep the receipt\n\n"
        "```\nRMA-42\n```"
    )
    assert message.text == (
        "Refunds take 5 days. Use ORDER-1:\n\n"
        "⦁ pack the item\n⦁ print the label\n\n"
        "1. Open your orders\n2. Click Cancel Return\n\n"
        "Keep the receipt\n\n"
        "RMA-42"
    )
    assert spans(message) == [
        ("bold", "Refunds"),
        ("italic", "5 days"),
        ("code", "ORDER-1"),
        ("text_link", "your orders"),
        ("strikethrough", "Cancel"),
        ("blockquote", "Keep the receipt"),
        ("pre", "RMA-42"),
    ]
    assert message.entities[3].url == "https://shop.example/orders"


def test_headings_and_tables_degrade_readably():
    message = from_markdown("### Delivery times\n\n| zone | days |\n|---|---|\n| EU | 3 |")
    assert message.text.startswith("Delivery times\n\n")  # no "###", no emoji before it
    assert ("bold", "Delivery times") in spans(message)
    assert "zone | days" in message.text and "EU   | 3" in message.text
    assert "|---|" not in message.text


def test_offsets_count_utf16_units_past_emoji_and_cyrillic():
    message = from_markdown("Привет 😀👍🏽 **жирный** и [ссылка](https://shop.example/ru)")
    assert message.text == "Привет 😀👍🏽 жирный и ссылка"
    assert spans(message) == [("bold", "жирный"), ("text_link", "ссылка")]
    # 7 Cyrillic letters and spaces, then three astral characters of two units each.
    assert message.entities[0].offset == message.text.index("жирный") + 3


def test_html_in_an_answer_stays_visible_text():
    message = from_markdown("Send us <your order number> and <b>nothing</b> else.\n\n<div>x</div>")
    assert message.text == "Send us <your order number> and <b>nothing</b> else.\n\n<div>x</div>"
    assert message.entities == ()


def test_links_telegram_would_refuse_keep_their_words_only():
    message = from_markdown("[home](/help) [run](javascript:alert(1)) <support@shop.example>")
    assert message.text == "home run support@shop.example"
    assert message.entities == ()


def test_text_without_markup_is_unchanged_and_plain_text_drops_markup():
    text = "Order 12 costs $5-$10; snake_case_name stays, and a < b > c."
    assert from_markdown(text) == Formatted(text)
    assert plain_text("**Refunds** take [5 days](https://shop.example)") == "Refunds take 5 days"
    assert from_markdown("   ") == Formatted("")


@pytest.mark.parametrize(
    ("partial", "closed"),
    [
        ("Refunds take **5 to 10", "Refunds take **5 to 10**"),
        ("see *the note", "see *the note*"),
        ("a **b *c", "a **b *c***"),
        ("use `ORD", "use `ORD`"),
        ("open [your orders](https://shop.exa", "open your orders"),
        ("open [your ord", "open your ord"),
        ("open [your orders]", "open your orders"),
        ("**done** and **", "**done** and"),
        ("Steps:\n```\nstep one", "Steps:\n```\nstep one\n```"),
        ("2*3 and snake_case", "2*3 and snake_case"),
    ],
)
def test_open_markup_of_a_partial_answer_is_closed(partial, closed):
    assert close_open_markup(partial) == closed


def test_a_partial_answer_looks_like_its_final_form():
    final = "Refunds take **5 to 10 working days** after we receive the item."
    for cut in range(1, len(final)):
        draft = from_markdown(final[:cut], partial=True)
        assert "*" not in draft.text, final[:cut]
        assert final.replace("**", "").startswith(draft.text)
    assert from_markdown(final[:30], partial=True).entities[0].type == "bold"


# ------------------------------------------------------------------------- splitting


def test_nine_thousand_characters_of_cyrillic_and_emoji_split_by_code_points():
    sentence = "Возврат **оформлен** 😀 и деньги придут скоро. "
    message = from_markdown((sentence * 220).strip())
    assert len(message.text) > 9000
    parts = split_formatted(message)
    for part in parts:
        assert_accepted_by_telegram(part)
    # Counted in UTF-16 units these parts would be over the limit; Telegram counts code points.
    assert any(utf16_len(p.text) > TELEGRAM_TEXT_LIMIT for p in parts)
    assert " ".join(p.text for p in parts) == message.text
    assert sum(len(p.entities) for p in parts) == 220
    assert all(covered(p, e) == "оформлен" for p in parts for e in p.entities)
    assert all(p.text.endswith("скоро.") for p in parts)  # cut at sentence ends


def test_an_entity_across_a_split_is_cut_into_both_parts():
    message = from_markdown("**" + " ".join(["слово 😀"] * 1500) + "**")
    parts = split_formatted(message)
    assert len(parts) == 3
    for part in parts:
        assert_accepted_by_telegram(part)
        assert [(e.type, e.offset, e.length) for e in part.entities] == [
            ("bold", 0, utf16_len(part.text))
        ]


def test_more_than_a_hundred_entities_split_the_message_and_keep_all_formatting():
    message = from_markdown("\n".join(f"- **item {n}** ready" for n in range(230)))
    assert len(message.text) < TELEGRAM_TEXT_LIMIT and len(message.entities) == 230
    parts = split_formatted(message)
    assert [len(p.entities) for p in parts] == [100, 100, 30]
    for part in parts:
        assert_accepted_by_telegram(part)
        assert part.text.startswith("⦁ item") and part.text.endswith("ready")
    assert "\n".join(p.text for p in parts) == message.text


def test_a_message_opening_inside_too_many_entities_drops_the_extra_formatting():
    crowded = Formatted("x" * 300, tuple(_bold(0, 300 - n) for n in range(150)))
    parts = split_formatted(crowded, limit=100)
    for part in parts:
        assert_accepted_by_telegram(part)
    assert len(parts[0].entities) == MAX_ENTITIES


def test_plain_text_splits_as_before():
    text = "\n\n".join(f"Paragraph {n}: " + "shipping times. " * 60 for n in range(6))
    text = "\n\n".join(p.strip() for p in text.split("\n\n"))
    parts = split_formatted(Formatted(text))
    assert all(len(p.text) <= TELEGRAM_TEXT_LIMIT and not p.entities for p in parts)
    assert "\n\n".join(p.text for p in parts) == text
    assert split_formatted(Formatted("")) == [Formatted("")]


def _bold(offset: int, length: int) -> MessageEntity:
    return MessageEntity("bold", offset, length)
