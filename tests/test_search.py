"""The default FAQ retriever: languages, fields, edge cases, confidence and accuracy floor."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import yaml

from bot.knowledge.faq import FaqEntry
from bot.knowledge.search import FaqIndex
from bot.knowledge.text import fold_spelling

BANKING = Path(__file__).resolve().parent.parent / "bench" / "data" / "banking77"

SHOP = [
    FaqEntry(
        id="shipping",
        question="How long does delivery take?",
        answer="Orders ship within two working days and arrive in three to five days.",
        tags=("shipping", "post"),
    ),
    FaqEntry(
        id="returns",
        question="Can I return an item?",
        answer="You can send goods back within 30 days for a full refund.",
        tags=("refund", "exchange"),
    ),
    FaqEntry(
        id="payment",
        question="Which payment methods do you accept?",
        answer="We accept Visa, Mastercard and bank transfer.",
        tags=("card", "pay"),
    ),
    FaqEntry(
        id="cafe",
        question="Is there a café in the store?",
        answer="Yes, our café on the ground floor serves coffee and cake.",
    ),
    FaqEntry(
        id="zh_hours",
        question="你们的营业时间是什么？",
        answer="我们每天上午九点到晚上八点营业。",
    ),
    FaqEntry(
        id="zh_delivery",
        question="快递需要多长时间？",
        answer="订单通常在三到五天内送达。",
    ),
    FaqEntry(
        id="ru_card",
        question="Как заблокировать банковскую карту?",
        answer="Откройте приложение и нажмите «Заблокировать карту».",
    ),
    FaqEntry(
        id="ru_hours",
        question="Когда вы работаете?",
        answer="Мы работаем ежедневно с девяти до восьми.",
    ),
]


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


def load_banking(name: str) -> list[FaqEntry]:
    raw = yaml.safe_load((BANKING / name).read_text(encoding="utf-8"))
    return [
        FaqEntry(
            id=item["id"],
            question=item["question"],
            answer=item["answer"],
            tags=tuple(item.get("tags") or ()),
            examples=tuple(item.get("examples") or ()),
        )
        for item in raw["faq"]
    ]


@pytest.fixture(scope="module")
def banking_sample() -> list[tuple[str, str]]:
    with (BANKING / "train.csv").open(encoding="utf-8", newline="") as fh:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    return random.Random(7).sample(rows, 300)


def test_banking77_accuracy_floor(banking_sample: list[tuple[str, str]]) -> None:
    index = FaqIndex(load_banking("faq.yaml"))
    hits = sum(label in [r.id for r in index.search(t, top_k=3)] for t, label in banking_sample)
    assert hits / len(banking_sample) >= 0.70


def test_banking77_examples_raise_accuracy(banking_sample: list[tuple[str, str]]) -> None:
    entries = load_banking("faq_with_examples.yaml")
    used = {x for e in entries for x in e.examples}
    sample = [m for m in banking_sample if m[0] not in used]
    index = FaqIndex(entries)
    hits = sum(label in [r.id for r in index.search(t, top_k=3)] for t, label in sample)
    assert hits / len(sample) >= 0.80


def test_out_of_domain_gets_low_confidence() -> None:
    index = FaqIndex(load_banking("faq.yaml"))
    for query in ("what's the weather on mars", "asdfgh", "recommend a pizza place"):
        results = index.search(query, top_k=1)
        assert not results or results[0].confidence < 0.5, query


def test_large_index_searches_quickly() -> None:
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
    assert top_id(index, entries[1234].question) == "1234"


def test_typo_in_the_deciding_word_still_matches() -> None:
    entries = [
        FaqEntry(id="new", question="How do I order a new card?", answer="Order one in the app."),
        FaqEntry(id="block", question="How do I block my card?", answer="Tap Block in the app."),
    ]
    assert top_id(FaqIndex(entries), "blok my card") == "block"
