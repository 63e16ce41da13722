"""Reading a follow-up together with the question before it.

"and how long does it take?" names no topic of its own; matched alone it finds
whatever entry talks most about durations. Matched together with the customer's
previous question ("How much is express delivery?") it finds the entry the
conversation is about. A message that changes the subject must not drag the old
topic along, so the two readings compete: a message clear enough on its own to be
answered straight from the FAQ is never read with the old topic, and otherwise
whichever reading is surer of its best entry wins.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.knowledge.faq import SearchResult

Search = Callable[[str, int], Awaitable[list[SearchResult]]]


async def search_in_context(
    search: Search, text: str, previous: str | None, top_k: int, clear_at: float
) -> list[SearchResult]:
    """``search(text, top_k)``, or of ``previous`` and ``text`` together when surer."""
    alone = await search(text, top_k)
    if not previous or previous == text or (alone and alone[0].confidence >= clear_at):
        return alone
    together = await search(f"{previous}\n{text}", top_k)
    if together and (not alone or together[0].confidence > alone[0].confidence):
        return together
    return alone
