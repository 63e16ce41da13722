"""The FAQ's word index kept on disk between starts (bot.knowledge.word_index_cache).

The file is a shortcut only: an index read back must search exactly as one built
afresh, and any change to the FAQ, a damaged file or a place that cannot be written
must leave the bot searching the FAQ as it is now.
"""

from __future__ import annotations

import csv
import dataclasses
import logging

from bot.knowledge.live import KnowledgeBase
from bot.knowledge.search import FaqIndex, SearchParams
from bot.knowledge.word_index_cache import WordIndexCache
from bot.services import open_services
from tests.helpers import BANKING, faq_entries, tune


def banking_messages(count: int) -> list[str]:
    with (BANKING / "train.csv").open(encoding="utf-8") as file:
        return [row["text"] for _, row in zip(range(count), csv.DictReader(file), strict=False)]


def results(index: FaqIndex, query: str) -> list[tuple[str, float, float]]:
    return [(r.id, r.score, r.confidence) for r in index.search(query, 5)]


def test_an_index_read_back_searches_exactly_as_one_built_afresh(tmp_path):
    entries = faq_entries(BANKING / "faq_with_examples.yaml")
    path = tmp_path / "bot.word-index"
    WordIndexCache(path).index(entries)
    assert path.exists()

    cache = WordIndexCache(path)
    read_back = cache.index(entries)
    assert cache.read_back
    fresh = FaqIndex(entries)
    for query in [*banking_messages(200), "", "🙂", "退款多久能到账？"]:
        assert results(read_back, query) == results(fresh, query), query


def test_other_entries_or_parameters_are_indexed_anew(tmp_path):
    entries = faq_entries(BANKING / "faq.yaml")
    path = tmp_path / "bot.word-index"
    WordIndexCache(path).index(entries)

    cache = WordIndexCache(path)
    changed = list(entries)
    changed[0] = dataclasses.replace(changed[0], answer="Ask for zebrafoo.")
    assert cache.index(changed).search("zebrafoo", 1)[0].id == changed[0].id
    assert not cache.read_back
    cache.index(entries, SearchParams(k1=1.2))
    assert not cache.read_back


def test_a_reload_and_a_restart_search_the_edited_faq(tmp_path, knowledge_dirs):
    config, faq = knowledge_dirs
    words = WordIndexCache(tmp_path / "bot.word-index")
    KnowledgeBase(config, faq, words)
    shipping = faq / "shipping.yaml"
    text = shipping.read_text(encoding="utf-8")
    shipping.write_text(text.replace("4.95 EUR", "4.95 EUR via zebrafoo", 1), encoding="utf-8")

    assert KnowledgeBase(config, faq, words).current.search("zebrafoo", 1)[0].id == (
        "shipping_costs"
    )
    assert not words.read_back
    assert KnowledgeBase(config, faq, words).current.search("zebrafoo", 1)[0].id == (
        "shipping_costs"
    )
    assert words.read_back


def test_a_damaged_file_is_built_anew(tmp_path, caplog):
    entries = faq_entries(BANKING / "faq.yaml")
    path = tmp_path / "bot.word-index"
    WordIndexCache(path).index(entries)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    cache = WordIndexCache(path)
    index = cache.index(entries)
    assert not cache.read_back
    assert "could not be read" in caplog.text
    assert results(index, "my card has not arrived") == results(
        FaqIndex(entries), "my card has not arrived"
    )
    cache.index(entries)
    assert cache.read_back  # and written whole again


def test_a_place_that_cannot_be_written_costs_only_the_shortcut(tmp_path, caplog):
    entries = faq_entries(BANKING / "faq.yaml")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    caplog.set_level(logging.WARNING)
    index = WordIndexCache(blocker / "bot.word-index").index(entries)
    assert index.search("my card has not arrived", 1)
    assert "could not keep the FAQ's word index" in caplog.text


async def test_the_bot_keeps_its_word_index_beside_its_database(
    make_settings, knowledge_dirs, tmp_path
):
    config, _faq = knowledge_dirs
    tune(config, semantic="false")  # the words alone are the subject here
    settings = make_settings()
    services = await open_services(settings)
    await services.close()
    assert services.knowledge.words.path == tmp_path / "bot.word-index"
    services = await open_services(settings)
    await services.close()
    assert services.knowledge.words.read_back
