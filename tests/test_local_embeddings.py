"""Matching by meaning with the local model (``retrieval.embedding_source: local``).

The model is the real one from the optional ``local`` extra, which the test install
includes; nothing here is replaced by a double except Telegram and the LLM.
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

from bot.knowledge.local_embeddings import LocalEmbedder
from bot.services import open_services
from tests.helpers import BANKING, SHOP_FAQ, faq_entries, run_main

SMALL_FAQ = """\
faq:
  - id: shipping_time
    question: "When will my parcel arrive?"
    answer: "Parcels arrive within 2-4 working days."
  - id: refund_time
    question: "How long does a refund take?"
    answer: "Refunds are paid out within 5 working days."
  - id: password_reset
    question: "How do I reset my password?"
    answer: "Use the Forgot password link on the sign-in page."
  - id: opening_hours
    question: "What are your opening hours?"
    answer: "We are open Monday to Friday, 9:00 to 17:00."
"""
# Messages that share no word with the entry they mean (nor, after stop words, any entry).
BY_MEANING = {
    "when do I get my cash back": "refund_time",
    "I need a new login code": "password_reset",
    "what time do you close": "opening_hours",
}


def use_local_model(config: Path, faq: Path | None = None) -> None:
    path = config / "bot.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("semantic: false", "semantic: true", 1)
    text = text.replace("embedding_source: bundled", "embedding_source: local", 1)
    path.write_text(text, encoding="utf-8")
    if faq is not None:
        for old in faq.glob("*.yaml"):
            old.unlink()
        (faq / "small.yaml").write_text(SMALL_FAQ, encoding="utf-8")


async def test_entries_are_found_by_meaning_without_a_shared_word(make_settings, knowledge_dirs):
    config, faq = knowledge_dirs
    use_local_model(config, faq)
    services = await open_services(make_settings())
    try:
        knowledge = services.knowledge.current
        for query, expected in BY_MEANING.items():
            assert knowledge.search(query, 3) == []  # words alone find nothing
            results = await services.core.retrieve(knowledge, query, 3)
            assert results[0].id == expected, query
            # No word-level evidence: never confident enough to answer without a person.
            assert results[0].confidence < services.settings.retrieval.confidence_threshold
    finally:
        await services.close()


async def test_the_model_is_given_the_entry_found_by_meaning(
    fake_llm, fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, faq = knowledge_dirs
    use_local_model(config, faq)
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(5151, "when do I get my cash back")
    await fake_telegram.wait_for_messages(5151, 1)
    system = fake_llm.last_request["messages"][0]["content"]
    assert 'faq id="refund_time"' in system
    assert fake_llm.embedding_requests == []  # nothing went to the provider


def test_faq_search_matches_as_the_bot_does(tmp_path, knowledge_dirs):
    config, faq = knowledge_dirs
    queries = list(BY_MEANING)
    (tmp_path / "small.yaml").write_text(SMALL_FAQ, encoding="utf-8")
    args = ("faq", "search", "--json", "--faq", str(tmp_path / "small.yaml"), "--top-k", "1")

    def first_ids() -> list[str | None]:
        found = []
        for query in queries:
            result = run_main(knowledge_dirs, tmp_path / "cli.sqlite3", *args, query)
            assert result.returncode == 0, result.stderr
            results = json.loads(result.stdout)["results"]
            found.append(results[0]["id"] if results else None)
        return found

    settings = config / "bot.yaml"
    shipped = settings.read_text(encoding="utf-8")
    settings.write_text(shipped.replace("semantic: true", "semantic: false", 1), encoding="utf-8")
    assert first_ids() == [None, None, None]
    settings.write_text(shipped, encoding="utf-8")
    use_local_model(config)
    assert first_ids() == [BY_MEANING[q] for q in queries]


# Python's own way to make a package unimportable, as if it were not installed.
BLOCK_PACKAGE = 'import sys\n\nsys.modules["wordllama"] = None\n'


def test_check_explains_a_missing_local_package(tmp_path, knowledge_dirs):
    config, _faq = knowledge_dirs
    use_local_model(config)
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(BLOCK_PACKAGE, encoding="utf-8")
    result = run_main(knowledge_dirs, tmp_path / "cli.sqlite3", "check", PYTHONPATH=str(hide))
    assert result.returncode == 1
    line = next(
        n
        for n, text in enumerate((config / "bot.yaml").read_text().splitlines(), start=1)
        if "embedding_source" in text
    )
    assert f"bot.yaml:{line}:" in result.stdout
    assert "wordllama" in result.stdout and "[local]" in result.stdout
    assert "Traceback" not in result.stderr
    # With the package there, the same files are valid.
    assert run_main(knowledge_dirs, tmp_path / "cli.sqlite3", "check").returncode == 0


async def test_text_without_known_tokens_leaves_the_ranking_to_words():
    embedder = LocalEmbedder()
    empty, word = await embedder.embed(["", "refund"])
    assert all(v == 0.0 for v in empty)
    assert math.isclose(sum(v * v for v in word), 1.0, rel_tol=1e-4)
    many = await embedder.embed(["refund"] * 40)  # a batch large enough for the thread
    assert [list(v) for v in many] == [list(word)] * 40


async def test_banking_messages_are_matched_better_than_by_words(make_settings, knowledge_dirs):
    """A sample of real customer messages: meaning must add clearly to the words."""
    config, faq = knowledge_dirs
    use_local_model(config)
    for old in faq.glob("*.yaml"):
        old.unlink()
    (faq / "bank.yaml").write_text((BANKING / "faq.yaml").read_text(encoding="utf-8"))
    with (BANKING / "train.csv").open(encoding="utf-8", newline="") as fh:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(fh)]
    messages = random.Random(7).sample(rows, 400)
    assert len(faq_entries(BANKING / "faq.yaml")) == 77
    services = await open_services(make_settings())
    try:
        knowledge = services.knowledge.current
        threshold = services.settings.retrieval.confidence_threshold
        by_words = by_meaning = 0
        sure_by_words: list[bool] = []  # whether each direct answer would be right
        sure_by_meaning: list[bool] = []
        for text, label in messages:
            words = knowledge.search(text, 3)
            by_words += label in [r.id for r in words]
            if words and words[0].confidence >= threshold:
                sure_by_words.append(words[0].id == label)
            fused = await services.core.retrieve(knowledge, text, 3)
            by_meaning += label in [r.id for r in fused]
            if fused and fused[0].confidence >= threshold:
                sure_by_meaning.append(fused[0].id == label)
    finally:
        await services.close()
    assert by_meaning >= by_words + 8, (by_words, by_meaning)  # at least 2 points in 100
    # The model's own confidence fit answers more messages directly, as precisely.
    precision = sum(sure_by_meaning) / len(sure_by_meaning)
    assert len(sure_by_meaning) >= len(sure_by_words) + 12, (sure_by_words, sure_by_meaning)
    assert precision >= 0.88, precision


async def test_languages_and_accents_still_match_with_the_model(make_settings, knowledge_dirs):
    """The model knows English best; fused with the words, other languages keep working."""
    config, faq = knowledge_dirs
    use_local_model(config)
    for old in faq.glob("*.yaml"):
        old.unlink()
    (faq / "shop.yaml").write_text(SHOP_FAQ.read_text(encoding="utf-8"), encoding="utf-8")
    queries = {
        "营业时间": "zh_hours",
        "快递多久能到": "zh_delivery",
        "заблокируйте мою карту": "ru_card",
        "когда работаете": "ru_hours",
        "café": "cafe",
        "CAFE": "cafe",
        "I want a refund for this item": "returns",
    }
    services = await open_services(make_settings())
    try:
        knowledge = services.knowledge.current
        for query, expected in queries.items():
            results = await services.core.retrieve(knowledge, query, 3)
            assert results[0].id == expected, query
    finally:
        await services.close()


async def test_out_of_domain_messages_are_not_answered_from_the_faq(make_settings, knowledge_dirs):
    config, _faq = knowledge_dirs
    use_local_model(config)
    services = await open_services(make_settings())
    try:
        knowledge = services.knowledge.current
        threshold = services.settings.retrieval.confidence_threshold
        for text in [
            "what's the weather on mars",
            "who won the football yesterday",
            "asdfgh",
            "tell me a joke about penguins",
        ]:
            results = await services.core.retrieve(knowledge, text, 3)
            assert not results or results[0].confidence < threshold, text
    finally:
        await services.close()
