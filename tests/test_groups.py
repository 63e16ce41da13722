"""conversation.answer_in_groups: in a group the bot answers only when mentioned or replied to."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import values

GROUP = -1002200
PERSON = {"id": 2201, "first_name": "Ana"}
BOT = "@shop_support_bot"


def answer_in_groups(config: Path, on: bool) -> None:
    path = config / "bot.yaml"
    text = path.read_text(encoding="utf-8")
    old = "  answer_in_groups: false"
    assert old in text
    path.write_text(text.replace(old, f"  answer_in_groups: {str(on).lower()}"), encoding="utf-8")


async def handled(fake_telegram, settings) -> None:
    """Every update pushed so far is done in the inbox: nothing more will be sent for it."""
    pushed = len(fake_telegram._history)
    db = settings.storage.database_path
    await fake_telegram.wait_for(
        lambda: values(db, "SELECT COUNT(*) FROM inbox WHERE status = 'done'")[0][0] == pushed,
        timeout=20,
    )


async def test_in_a_group_only_messages_addressed_to_the_bot_are_answered(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    answer_in_groups(knowledge_dirs[0], True)
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.group_text(GROUP, "Where is my parcel?", PERSON)  # talking among themselves
    update_id = fake_telegram.group_text(GROUP, f"{BOT} where is my parcel?", PERSON)
    [asked] = [u["message"] for u in fake_telegram._history if u["update_id"] == update_id]
    await fake_telegram.wait_for_messages(GROUP, 1, timeout=20)
    await handled(fake_telegram, settings)
    [answer] = fake_telegram.bot_messages(GROUP)
    assert answer["text"] == "Answer to: where is my parcel?", "the mention reached the model"
    assert answer["reply_to_message"]["message_id"] == asked["message_id"]
    assert len(fake_llm.requests) == 1

    fake_telegram.group_text(
        GROUP, "And can I pay by card?", PERSON, reply_to_message_id=answer["message_id"]
    )
    await fake_telegram.wait_for_messages(GROUP, 2, timeout=20)
    assert fake_telegram.sent_messages(GROUP)[1] == "Answer to: And can I pay by card?"


async def test_groups_are_not_answered_unless_answer_in_groups_is_on(
    fake_telegram, fake_llm, make_settings, start_bot
):
    settings = make_settings(fake_telegram, fake_llm)
    assert not settings.conversation.answer_in_groups
    await start_bot(settings)
    fake_telegram.group_text(GROUP, f"{BOT} where is my parcel?", PERSON)
    await handled(fake_telegram, settings)
    assert fake_telegram.bot_messages(GROUP) == []
    assert fake_llm.requests == []
