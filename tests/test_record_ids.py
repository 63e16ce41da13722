"""Ids from button data and staff commands: what is not an id is ignored, never fails."""

from bot.telegram.desk import card_press, staff_buttons
from bot.telegram.record_ids import is_record_id, is_ticket_argument


def test_a_card_press_is_read_back_from_the_data_the_card_was_made_with():
    class Ticket:
        id = 42

    keyboard = staff_buttons(Ticket())  # type: ignore[arg-type]
    pressed = [card_press(b.callback_data) for row in keyboard.inline_keyboard for b in row]
    assert pressed == [("claim", 42), ("close", 42)]


def test_forged_card_data_that_is_not_an_id_is_ignored():
    for data in [
        "staff:claim:²",
        "staff:close:٣",
        "staff:close:" + "9" * 19,
        "staff:close:",
        "x:close:1",
    ]:
        assert card_press(data) is None


def test_a_ticket_argument_is_ascii_digits_with_or_without_its_hash():
    assert is_ticket_argument("#12") and is_ticket_argument("12")
    assert (
        not is_ticket_argument("²")
        and not is_ticket_argument("#")
        and not is_ticket_argument("1e3")
    )
    assert is_record_id("9" * 18) and not is_record_id("9" * 19)
