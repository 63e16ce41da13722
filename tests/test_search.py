"""The default FAQ retriever: languages, fields, edge cases, confidence and accuracy floor."""

from __future__ import annotations

import csv
import random

import pytest

from bot.knowledge.faq import FaqEntry
from bot.knowledge.search import FaqIndex
from bot.knowledge.text import fold_spelling
from tests.helpers import BANKING, SHOP_FAQ, faq_entries

SHOP = faq_entries(SHOP_FAQ)


@pytest.fixture(scope="module")
def shop() -> FaqIndex:
    return FaqIndex(SHOP)


def top_id(index: FaqIndex, query: str) -> str:
    results = index.search(query, top_k=1)
    assert results, query
    return results[0].id


def test_english_question_finds_its_entry(shop: FaqIndex) -> None:
    assert top_id(shop, "how many days until my order is delivered") == "shipping"
    assert top_id(shop, "I want a refund for this item") == "returns"


def test_chinese_question_matched_by_chinese_text(shop: FaqIndex) -> None:
    assert top_id(shop, "营业时间") == "zh_hours"
    assert top_id(shop, "快递多久能到") == "zh_delivery"


def test_russian_word_forms_match(shop: FaqIndex) -> None:
    assert top_id(shop, "заблокируйте мою карту") == "ru_card"
    assert top_id(shop, "когда работаете") == "ru_hours"


@pytest.mark.parametrize("query", ["cafe", "café", "CAFÉ", "Café"])
def test_accents_match_with_and_without(shop: FaqIndex, query: str) -> None:
    assert top_id(shop, query) == "cafe"


def test_accented_query_matches_plain_entry() -> None:
    index = FaqIndex([*SHOP, FaqEntry(id="creme", question="Do you sell creme brulee?", answer="")])
    assert top_id(index, "crème brûlée") == "creme"


def test_normalize_folds_width_case_and_apostrophes() -> None:
    assert fold_spelling("ＨＡＳＮ’Ｔ") == "hasnt"
    assert fold_spelling("Ёлка") == "елка"
    assert fold_spelling("йод") == "йод"  # й is its own letter, not и with an accent


def test_examples_field_helps() -> None:
    plain = [
        FaqEntry(id="a", question="How do I reset my password?", answer="Use the login page."),
        FaqEntry(id="b", question="How do I change my email?", answer="Open your settings."),
    ]
    with_examples = [
        plain[0],
        FaqEntry(
            id="b",
            question=plain[1].question,
            answer=plain[1].answer,
            examples=("my inbox address is outdated",),
        ),
    ]
    query = "inbox address outdated"
    assert FaqIndex(plain).search(query) == []
    assert top_id(FaqIndex(with_examples), query) == "b"


def test_tags_help() -> None:
    entries = [
        FaqEntry(id="a", question="Where is my parcel?", answer="Track it online."),
        FaqEntry(id="b", question="Where is my order?", answer="Check your account."),
    ]
    tagged = [
        entries[0],
        FaqEntry(id="b", question=entries[1].question, answer="", tags=("refund",)),
    ]
    assert all(r.id != "b" for r in FaqIndex(entries).search("refund"))
    assert top_id(FaqIndex(tagged), "refund") == "b"


@pytest.mark.parametrize("query", ["", "   ", "?!...", "—", "🙂"])
def test_empty_and_punctuation_queries_return_nothing(shop: FaqIndex, query: str) -> None:
    assert shop.search(query) == []


def test_empty_index() -> None:
    index = FaqIndex([])
    assert len(index) == 0
    assert index.search("anything") == []


def test_top_k_respected(shop: FaqIndex) -> None:
    query = "card payment refund delivery café"
    assert len(shop.search(query, top_k=1)) == 1
    assert len(shop.search(query, top_k=2)) == 2
    assert shop.search(query, top_k=0) == []
    results = shop.search(query, top_k=10)
    assert len(results) <= 10
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    assert len(shop) == len(SHOP)


def test_confidence_in_range_and_ordered(shop: FaqIndex) -> None:
    exact = shop.search("Which payment methods do you accept?")[0]
    vague = shop.search("methods")[0]
    assert exact.id == "payment"
    assert 0.0 <= vague.confidence < exact.confidence <= 1.0
    for r in shop.search("card payment refund delivery", top_k=5):
        assert 0.0 <= r.confidence <= 1.0


@pytest.fixture(scope="module")
def banking_sample() -> list[tuple[str, str]]:
    with (BANKING / "train.csv").open(encoding="utf-8", newline="") as fh:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    return random.Random(7).sample(rows, 300)


def test_banking77_accuracy_floor(banking_sample: list[tuple[str, str]]) -> None:
    index = FaqIndex(faq_entries(BANKING / "faq.yaml"))
    hits = sum(label in [r.id for r in index.search(t, top_k=3)] for t, label in banking_sample)
    assert hits / len(banking_sample) >= 0.70


def test_banking77_examples_raise_accuracy(banking_sample: list[tuple[str, str]]) -> None:
    entries = faq_entries(BANKING / "faq_with_examples.yaml")
    used = {x for e in entries for x in e.examples}
    sample = [m for m in banking_sample if m[0] not in used]
    index = FaqIndex(entries)
    hits = sum(label in [r.id for r in index.search(t, top_k=3)] for t, label in sample)
    assert hits / len(sample) >= 0.80


def test_out_of_domain_gets_low_confidence() -> None:
    index = FaqIndex(faq_entries(BANKING / "faq.yaml"))
    for query in ("what's the weather on mars", "asdfgh", "recommend a pizza place"):
        results = index.search(query, top_k=1)
        assert not results or results[0].confidence < 0.5, query


def test_a_large_index_finds_each_entry_by_its_own_words() -> None:
    """2,000 entries of random words, where a mistake in scoring or indexing shows.

    How fast the search is belongs to the benchmarks, not here: bench/scenarios.py (e)
    times it on 10,000 entries (bench/retrieval.py's ``speed``).
    """
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(3000)]
    entries = [
        FaqEntry(
            id=str(i),
            question=" ".join(rng.choices(vocab, k=8)),
            answer=" ".join(rng.choices(vocab, k=30)),
        )
        for i in range(2000)
    ]
    index = FaqIndex(entries)
    for entry in rng.sample(entries, 100):
        assert top_id(index, entry.question) == entry.id
        half = " ".join(rng.sample(entry.question.split(), 4))
        results = index.search(half, top_k=3)
        assert results[0].id == entry.id, half
        confidences = [r.confidence for r in results]
        assert confidences == sorted(confidences, reverse=True)
        assert len({r.id for r in results}) == len(results)
    assert index.search("none of these words is in any entry", top_k=3) == []


def test_typo_in_the_deciding_word_still_matches() -> None:
    entries = [
        FaqEntry(id="new", question="How do I order a new card?", answer="Order one in the app."),
        FaqEntry(id="block", question="How do I block my card?", answer="Tap Block in the app."),
    ]
    assert top_id(FaqIndex(entries), "blok my card") == "block"
