"""Live reload: admins edit persona and FAQ files while the bot runs against both fakes.

Edits go to the test's own copy of the files. Each test waits (bounded) for the bot to
pick the change up, then checks what customers and admins see and what the database
recorded with each answer.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fakes import TgUser
from tests.helpers import all_handled

ADMINS = (TgUser(id=7001, first_name="Ada"), TgUser(id=7002, first_name="Grace"))
OTHER = TgUser(id=7003, first_name="Mallory")
CUSTOMER = TgUser(id=5001, first_name="Kim")

NEW_ENTRY = """
  - id: student_discount
    question: "Do you offer a student discount?"
    answer: "Students get 15 % off with a valid university email address, once per semester."
    tags: [student discount, university, students]
    examples:
      - "is there a discount for students at university"
"""
NEW_QUESTION = "is there a discount for students at university"
NEW_ANSWER = "Students get 15 % off with a valid university email address, once per semester."


def versions(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        found = conn.execute(
            "SELECT a.knowledge_version FROM answers a JOIN messages m ON m.id = a.message_id"
            " WHERE m.chat_id = ? ORDER BY m.id",
            (CUSTOMER.id,),
        ).fetchall()
    finally:
        conn.close()
    return [row[0] for row in found]


def set_poll(config: Path, seconds: str) -> None:
    path = config / "bot.yaml"
    text = path.read_text(encoding="utf-8")
    assert "reload_poll_seconds: 3.0" in text
    path.write_text(text.replace("reload_poll_seconds: 3.0", f"reload_poll_seconds: {seconds}"))


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


def count_polls(monkeypatch, knowledge) -> Callable[[], int]:
    """How often the watcher has looked at the files since now (it asks once a round).

    A round that finds a change reloads, and reports a broken file, before the next
    round looks: so after n looks, whatever n - 1 rounds would send has been sent.
    """
    looks = 0
    look = knowledge.changed

    def counted() -> bool:
        nonlocal looks
        looks += 1
        return look()

    monkeypatch.setattr(knowledge, "changed", counted)
    return lambda: looks


@pytest.fixture
def start(fake_telegram, make_settings, start_bot, knowledge_dirs):
    """Start the bot with two admins, polling the files every `poll` seconds."""
    config, _faq = knowledge_dirs

    async def go(llm=None, poll: str = "0.05"):
        set_poll(config, poll)
        settings = make_settings(
            fake_telegram, llm, ADMIN_USER_IDS=",".join(str(a.id) for a in ADMINS)
        )
        bot = await start_bot(settings)
        return bot, Path(settings.storage.database_path)

    return go


async def ask(fake_telegram, text: str) -> str:
    before = len(fake_telegram.bot_messages(CUSTOMER.id))
    fake_telegram.user_text(CUSTOMER.id, text, CUSTOMER)
    texts = await fake_telegram.wait_for_messages(CUSTOMER.id, before + 1)
    return texts[-1]


async def new_version(fake_telegram, bot, old: str) -> str:
    """The bot's knowledge version once it differs from `old`: at most 5 s after the edit."""
    knowledge = bot.services.knowledge
    await fake_telegram.wait_for(lambda: knowledge.current.version != old, timeout=5)
    return knowledge.current.version


async def test_new_entry_reaches_the_model_without_restart(
    fake_telegram, fake_llm, start, knowledge_dirs
):
    _config, faq = knowledge_dirs
    bot, db = await start(fake_llm)
    old = bot.services.knowledge.current.version
    await ask(fake_telegram, NEW_QUESTION)
    assert "student_discount" not in fake_llm.last_request["messages"][0]["content"]

    append(faq / "shop.yaml", NEW_ENTRY)
    await new_version(fake_telegram, bot, old)
    await ask(fake_telegram, "any student discount for university students?")
    system = fake_llm.last_request["messages"][0]["content"]
    assert 'faq id="student_discount"' in system and "once per semester" in system

    first, second = versions(db)
    assert first == old and second != old


async def test_new_entry_answers_directly_in_faq_only_mode(fake_telegram, start, knowledge_dirs):
    _config, faq = knowledge_dirs
    bot, db = await start()
    old = bot.services.knowledge.current.version
    assert NEW_ANSWER not in await ask(fake_telegram, NEW_QUESTION)

    append(faq / "shop.yaml", NEW_ENTRY)
    version = await new_version(fake_telegram, bot, old)
    assert await ask(fake_telegram, "do you offer a student discount?") == NEW_ANSWER
    assert versions(db)[-1] == version != old


async def test_new_faq_file_is_picked_up(fake_telegram, start, knowledge_dirs):
    _config, faq = knowledge_dirs
    bot, _db = await start()
    old = bot.services.knowledge.current.version
    (faq / "students.yaml").write_text("faq:" + NEW_ENTRY, encoding="utf-8")
    await new_version(fake_telegram, bot, old)
    assert await ask(fake_telegram, "do you offer a student discount?") == NEW_ANSWER


async def test_broken_edit_keeps_the_last_good_version_and_tells_every_admin(
    fake_telegram, start, knowledge_dirs, monkeypatch
):
    _config, faq = knowledge_dirs
    bot, db = await start()
    good = bot.services.knowledge.current.version
    shop = faq / "shop.yaml"
    lines = shop.read_text(encoding="utf-8").count("\n")
    # A valid new entry and, below it, an unclosed quote: nothing of the edit may go live.
    append(shop, NEW_ENTRY + '\n  - id: broken\n    question: "no end quote\n')
    broken_line = lines + len(NEW_ENTRY.splitlines()) + 3
    expected = f"{shop}:{broken_line}: unclosed quote"

    for admin in ADMINS:
        texts = await fake_telegram.wait_for_messages(admin.id, 1)
        assert "last good version" in texts[0]
        assert expected in texts[0], texts[0]
    assert fake_telegram.sent_messages(OTHER.id) == []
    assert fake_telegram.sent_messages(CUSTOMER.id) == []

    assert "4.95 EUR" in await ask(fake_telegram, "how much does shipping cost to austria?")
    assert NEW_ANSWER not in await ask(fake_telegram, "do you offer a student discount?")
    assert versions(db) == [good, good]
    assert bot.services.knowledge.current.version == good
    # Reported once per broken edit, not on every poll: three more polls tell nobody.
    polls = count_polls(monkeypatch, bot.services.knowledge)
    await fake_telegram.wait_for(lambda: polls() >= 3)
    assert [len(fake_telegram.sent_messages(a.id)) for a in ADMINS] == [1, 1]

    # Fixing the file puts the new entry live.
    text = shop.read_text(encoding="utf-8")
    shop.write_text(text.replace('"no end quote\n', '"fixed"\n    answer: "Fixed."\n'))
    version = await new_version(fake_telegram, bot, good)
    assert await ask(fake_telegram, "do you offer a student discount?") == NEW_ANSWER
    assert versions(db)[-1] == version


async def test_reload_command_for_admins_only(fake_telegram, start, knowledge_dirs):
    _config, faq = knowledge_dirs
    # The watcher effectively off: only /reload can bring the edit in.
    bot, db = await start(poll="3600")
    old = bot.services.knowledge.current.version
    append(faq / "shop.yaml", NEW_ENTRY)

    fake_telegram.user_text(OTHER.id, "/reload", OTHER)
    await all_handled(fake_telegram, db)
    assert fake_telegram.sent_messages(OTHER.id) == []
    assert NEW_ANSWER not in await ask(fake_telegram, "do you offer a student discount?")

    admin = ADMINS[1]
    fake_telegram.user_text(admin.id, "/reload", admin)
    reply = (await fake_telegram.wait_for_messages(admin.id, 1))[0]
    match = re.search(r"Knowledge version ([0-9a-f]{12}): (\d+) FAQ entries", reply)
    assert match, reply
    assert match[1] != old
    assert await ask(fake_telegram, "do you offer a student discount?") == NEW_ANSWER
    assert versions(db) == [old, match[1]]


async def test_reload_command_reports_a_broken_file(fake_telegram, start, knowledge_dirs):
    config, _faq = knowledge_dirs
    bot, db = await start(poll="3600")
    old = bot.services.knowledge.current.version
    persona = config / "persona.yaml"
    persona.write_text(
        persona.read_text(encoding="utf-8").replace("name: Nora", "name: [Nora", 1),
        encoding="utf-8",
    )
    line = next(
        n
        for n, text in enumerate(persona.read_text(encoding="utf-8").splitlines(), 1)
        if text.startswith("name: [Nora")
    )
    admin = ADMINS[0]
    fake_telegram.user_text(admin.id, "/reload", admin)
    texts = await fake_telegram.wait_for(
        lambda: [t for t in fake_telegram.sent_messages(admin.id) if "Reload failed" in t]
    )
    assert f"still using version {old}" in texts[0]
    assert f"{persona}:{line}: " in texts[0], texts[0]
    assert "4.95 EUR" in await ask(fake_telegram, "how much does shipping cost to austria?")
    assert versions(db) == [old]
