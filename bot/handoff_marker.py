"""Streaming without tools: the handoff marker never shows in the preview.

With ``llm.use_tools: false`` the model asks for a person by writing
``llm.escalation_marker`` ("[[HANDOFF]]") and a summary for staff. Streamed as
it comes, the customer would watch the marker and the summary appear before
the handoff notice replaced them. So the text is passed on only up to where
the marker could begin: a tail that might be the marker's first characters
waits for the next piece, and from the marker on nothing more is shown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

TextCallback = Callable[[str], Awaitable[None]]


def _held_back(text: str, marker: str) -> int:
    """How many characters at the end of ``text`` could be the start of ``marker``."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


def hiding_marker(on_text: TextCallback, marker: str) -> TextCallback:
    """``on_text`` that sees the model's text without the marker or anything after it."""
    written = ""
    shown = 0
    stopped = False

    async def forward(delta: str) -> None:
        nonlocal written, shown, stopped
        if stopped:
            return
        written += delta
        at = written.find(marker, max(0, shown - len(marker)))
        if at >= 0:
            stopped = True
            visible = at
        else:
            visible = len(written) - _held_back(written, marker)
        if visible > shown:
            piece, shown = written[shown:visible], visible
            await on_text(piece)

    return forward
