"""Streaming with llm.use_tools: false: answers stream, and the handoff marker never shows."""

from __future__ import annotations

from pathlib import Path

from bot.handoff_marker import hiding_marker
from tests.fakes import Reply

MARKER = "[[HANDOFF]]"


async def shown(pieces: list[str]) -> str:
    seen: list[str] = []

    async def on_text(piece: str) -> None:
        seen.append(piece)

    forward = hiding_marker(on_text, MARKER)
    for piece in pieces:
        await forward(piece)
    return "".join(seen)


async def test_text_before_the_marker_is_shown_and_nothing_from_it_on():
    assert await shown(["Let me get ", "a colleague. [[HAND", "OFF]] Wants a refund"]) == (
        "Let me get a colleague. "
    )
    assert await shown(["[", "[", "HANDOFF]]", " summary"]) == ""


async def test_a_tail_that_only_looks_like_the_marker_is_shown_once_it_is_not():
    assert await shown(["Use [[brackets", "]] freely."]) == "Use [[brackets]] freely."
    assert await shown(["All done [["]) == "All done "  # held back: it may begin the marker


def tools_off(config: Path) -> None:
    path = config / "bot.yaml"
    text = path.read_text(encoding="utf-8")
    assert "  use_tools: true" in text
    path.write_text(text.replace("  use_tools: true", "  use_tools: false"), encoding="utf-8")


async def test_answers_stream_when_tools_are_off(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    tools_off(knowledge_dirs[0])
    answer = "Refunds reach your account within 5 to 10 working days after we receive the item."
    fake_llm.script(Reply.text(answer, chunks=8, chunk_delay=0.05))
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(2101, "How long does a refund take?")
    assert await fake_telegram.wait_for_messages(2101, 1) == [answer]
    assert fake_telegram.drafts(2101), "the answer was not shown while it was written"
    assert fake_llm.last_request["stream"] is True
    assert "tools" not in fake_llm.last_request


async def test_a_streamed_handoff_never_shows_the_marker_or_the_summary(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    tools_off(knowledge_dirs[0])
    words = "One moment, I will ask a colleague to help you with this. " * 3
    reply = words + "[[HANDOFF]] Customer wants to change the delivery address"
    fake_llm.script(Reply.text(reply, chunks=30, chunk_delay=0.03))
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(2102, "Can you change where my parcel goes?")
    [notice] = await fake_telegram.wait_for_messages(2102, 1)
    drafts = [d["text"] for d in fake_telegram.drafts(2102)]
    assert drafts, "nothing was streamed"
    for text in [*drafts, notice]:
        assert "[[" not in text and "delivery address" not in text, text
