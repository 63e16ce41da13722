"""Reading a follow-up with the question before it (bot.knowledge.followup)."""

from __future__ import annotations

from bot.knowledge.faq import FaqEntry, SearchResult
from bot.knowledge.followup import search_in_context

CLEAR_AT = 0.83


def result(entry_id: str, confidence: float) -> SearchResult:
    return SearchResult(FaqEntry(id=entry_id, question=entry_id, answer="."), 1.0, confidence)


def readings(alone: SearchResult, together: SearchResult):
    """A search that finds ``alone`` for the message and ``together`` for both turns."""

    async def search(text: str, top_k: int, context: str | None) -> list[SearchResult]:
        return [together if context else alone]

    return search


async def test_a_clear_message_keeps_its_own_reading():
    search = readings(result("shipping_countries", 0.97), result("refund_time", 0.3))
    got = await search_in_context(search, "Do you ship to Norway?", "Refunds?", 3, CLEAR_AT)
    assert [(r.id, r.confidence) for r in got] == [("shipping_countries", 0.97)]


async def test_an_unclear_follow_up_takes_the_topic_before_it():
    search = readings(result("shipping_costs", 0.4), result("installments", 0.95))
    got = await search_in_context(search, "from which amount?", "Instalments?", 3, CLEAR_AT)
    assert [(r.id, r.confidence) for r in got] == [("installments", 0.95)]


async def test_two_readings_sure_of_different_entries_are_not_answered_directly():
    """ "and what does it cost?" after a question about exchanges: alone it is about
    shipping costs, together about exchanges; neither may be answered as certain."""
    search = readings(result("shipping_costs", 1.0), result("exchange_item", 0.6))
    got = await search_in_context(search, "and the cost?", "Exchanges?", 3, CLEAR_AT)
    assert got[0].id == "shipping_costs"
    assert got[0].confidence == 0.6 < CLEAR_AT


async def test_agreeing_readings_keep_their_confidence():
    search = readings(result("gift_cards", 0.9), result("gift_cards", 0.99))
    got = await search_in_context(search, "do they expire?", "Gift cards?", 3, CLEAR_AT)
    assert [(r.id, r.confidence) for r in got] == [("gift_cards", 0.9)]
