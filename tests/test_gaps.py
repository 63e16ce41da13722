"""``python main.py gaps``: questions the FAQ could not answer, grouped, with drafts.

The acceptance run goes through python-telegram-bot against the Bot API double and
the LLM double over HTTP: customers ask in three languages about something the FAQ
does not cover (gift wrapping), the model hands each over, and staff answer each in
the ticket's topic. The report is then read with the real command line, from the
same SQLite file, as an admin would.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from bot.commands.evaluate import load_cases
from bot.knowledge.live import load_knowledge
from tests.fakes import Reply, TgUser
from tests.fakes.llm_replies import last_user_text
from tests.helpers import rows, run_main

STAFF = -1009000
AGENT = TgUser(id=501, first_name="Sam")
CUSTOMERS = [
    (
        TgUser(id=1001, first_name="Anna", last_name="Berg", language_code="en"),
        "Do you offer gift wrapping? My email is anna.berg@example.com",
        "Yes Anna, we gift-wrap any order for 3.50 EUR: tick Gift wrap in the cart before "
        "checkout and add a card message if you like. I noted your number +49 151 2345678.",
    ),
    (
        TgUser(id=1002, first_name="Jonas", language_code="de"),
        "Bietet ihr auch Geschenkverpackung an?",
        "Ja, Geschenkverpackung kostet 3,50 EUR: im Warenkorb Gift wrap ankreuzen.",
    ),
    (
        TgUser(id=1003, first_name="Lucía", language_code="es"),
        "¿Ofrecéis envoltorio de regalo para los pedidos?",
        "Sí, envolvemos cualquier pedido por 3,50 EUR: marque Gift wrap en el carrito.",
    ),
]
PERSONAL = ["anna.berg@example.com", "+49 151 2345678", "2345678", "Anna", "Berg"]
GIFT_WRAP_WORDS = ("gift wrap", "geschenkverpackung", "envoltorio")


def hands_gift_wrap_over(request: dict) -> Reply:
    """The model: gift wrapping is not in its material, so it asks for a person."""
    text = last_user_text(request)
    if any(word in text.lower() for word in GIFT_WRAP_WORDS):
        return Reply.tool_call(
            "escalate", {"reason": "not covered by FAQ", "summary": "asks about gift wrap"}
        )
    return Reply.text(f"Answer to: {text}")


async def run_customers_through_the_desk(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    # The bot searches its FAQ by words here: embedding the whole FAQ for one test costs
    # a minute on a busy machine. Grouping still uses the sentence model, and the search
    # by meaning is covered on a small FAQ in test_gaps_core.py.
    config = knowledge_dirs[0] / "bot.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("  semantic: true", "  semantic: false"), encoding="utf-8")
    fake_telegram.add_forum_group(STAFF)
    fake_llm.responder = hands_gift_wrap_over
    settings = make_settings(fake_telegram, fake_llm, STAFF_CHAT_ID=str(STAFF))
    await start_bot(settings)
    db = Path(settings.storage.database_path)
    for number, (customer, question, answer) in enumerate(CUSTOMERS, 1):
        fake_telegram.user_text(customer.id, question, customer)
        # Generous waits: the first answer loads the language model on a shared machine.
        await fake_telegram.wait_for_messages(customer.id, 1, timeout=30)
        ticket = await fake_telegram.wait_for(
            lambda n=number: rows(
                db, "SELECT * FROM tickets WHERE id = ? AND staff_thread_id IS NOT NULL", n
            ),
            timeout=30,
        )
        thread_id = ticket[0]["staff_thread_id"]
        assert thread_id, "each ticket has its own topic"
        fake_telegram.group_text(STAFF, answer, AGENT, thread_id)
        await fake_telegram.wait_for_messages(customer.id, 2, timeout=30)
        await fake_telegram.wait_for(
            lambda n=number: rows(
                db, "SELECT 1 FROM messages WHERE role = 'staff' AND ticket_id = ?", n
            ),
            timeout=30,
        )
    return settings, db


async def test_three_languages_one_group_with_staff_answer_and_a_valid_draft(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs, tmp_path
):
    settings, db = await run_customers_through_the_desk(
        fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
    )
    reasons = rows(db, "SELECT escalation_reason FROM answers WHERE escalation_reason IS NOT NULL")
    assert [r[0] for r in reasons] == ["model"] * 3, "each handoff records why it happened"

    draft = tmp_path / "drafts" / "gift_wrap.yaml"
    done = run_main(knowledge_dirs, db, "gaps", "--json", "--draft", str(draft))
    assert done.returncode == 0, done.stderr
    groups = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(groups) == 1, groups
    group = groups[0]
    assert set(group) >= {
        "size", "customers", "messages", "languages", "closest_faq", "staff_answers", "draft"
    }  # fmt: skip
    assert group["size"] == 3 and group["customers"] == 3
    assert sorted(group["languages"]) == ["de", "en", "es"]
    assert {m["reason"] for m in group["messages"]} == {"model"}
    assert sorted(m["ticket_id"] for m in group["messages"]) == [1, 2, 3]
    # The bot's own search names the nearest entry, with a score below answering.
    closest = group["closest_faq"]
    assert closest is not None and isinstance(closest["score"], float)
    assert closest["id"] in {e["id"] for e in faq_entries(knowledge_dirs[1])}
    assert closest["score"] < settings.retrieval.confidence_threshold
    # How staff answered, each ticket's reply, scrubbed of the customer's data.
    assert len(group["staff_answers"]) == 3
    assert any("we gift-wrap any order for 3.50 EUR" in a for a in group["staff_answers"])
    assert any("Geschenkverpackung kostet 3,50 EUR" in a for a in group["staff_answers"])
    # The draft: English question (the FAQ's language), the longest staff reply.
    entry = group["draft"]
    # Sentences that only carried personal details are left out of the draft.
    assert entry["question"] == "Do you offer gift wrapping?"
    assert entry["answer"].startswith("Yes [name], we gift-wrap any order for 3.50 EUR")
    assert len(entry["examples"]) == 2
    assert entry["id"].startswith("gap_do_you_offer_gift")

    written = draft.read_text(encoding="utf-8")
    cases = draft.with_name("gift_wrap.cases.yml").read_text(encoding="utf-8")
    for text in (done.stdout, written, cases):
        for personal in PERSONAL:
            assert personal not in text, (personal, text)
        assert not re.search(r"[\w.+-]+@[\w-]+\.\w+", text), "no email address at all"
    assert entry["id"] in written and entry["id"] in cases

    # Placed in faq/, the draft passes check: valid, and its id clashes with none.
    shutil.copy(draft, knowledge_dirs[1] / "gift_wrap.yaml")
    checked = run_main(knowledge_dirs, db, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # Its eval cases are valid for `eval` against the FAQ with the draft in it, and
    # ask for the new entry (running them would embed the FAQ again: too slow here).
    knowledge = load_knowledge(*knowledge_dirs)
    loaded = load_cases(draft.with_name("gift_wrap.cases.yml"), knowledge)
    assert {c.expect_faq for c in loaded} == {entry["id"]}
    assert sorted(c.message for c in loaded) == sorted([entry["question"], *entry["examples"]])
    assert not list(knowledge_dirs[1].glob("gap*")), "nothing was written into faq/ by gaps"


def faq_entries(faq: Path) -> list[dict]:
    import yaml

    found = []
    for path in sorted(faq.glob("*.yaml")):
        found += yaml.safe_load(path.read_text(encoding="utf-8"))["faq"]
    return found
