"""Reading a follow-up together with the question before it.

"and how long does it take?" names no topic of its own; matched alone it finds
whatever entry talks most about durations. Matched together with the customer's
previous question ("How much is express delivery?") it finds the entry the
conversation is about. A message that changes the subject must not drag the old
topic along, so the two readings compete: a message clear enough on its own to be
answered straight from the FAQ is never read with the old topic, and otherwise
whichever reading is surer of its best entry wins.

When the two readings point at different entries and the losing one is still a real
contender (at least even odds), the message is ambiguous: the winner is then only as
sure as that contender, so it is not answered straight from the FAQ on the strength
of one reading when the other may be the one the customer meant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.knowledge.faq import SearchResult

# search(text, top_k, context): ``context`` is the question before, read with ``text``.
Search = Callable[[str, int, str | None], Awaitable[list[SearchResult]]]

CONTENDER = 0.5  # a reading at least this sure of another entry makes the message ambiguous


async def search_in_context(
    search: Search, text: str, previous: str | None, top_k: int, clear_at: float
) -> list[SearchResult]:
    """``search(text, top_k)``, or of ``text`` read with ``previous`` when surer."""
    alone = await search(text, top_k, None)
    if not previous or previous == text:
        return alone
    together = await search(text, top_k, previous)
    clear_alone = bool(alone) and alone[0].confidence >= clear_at
    if together and (
        not alone or (not clear_alone and together[0].confidence > alone[0].confidence)
    ):
        return _as_sure_as(together, alone)
    return _as_sure_as(alone, together)


def _as_sure_as(chosen: list[SearchResult], other: list[SearchResult]) -> list[SearchResult]:
    """``chosen``, its best match no surer than a contending reading of another entry."""
    if not chosen or not other or other[0].id == chosen[0].id:
        return chosen
    rival = other[0].confidence
    if rival < CONTENDER or rival >= chosen[0].confidence:
        return chosen
    best = chosen[0]
    return [SearchResult(best.entry, best.score, rival), *chosen[1:]]
