"""Streaming answers: drafts in private chats, edits as a fallback, and no flood-control 429s."""

from __future__ import annotations

import asyncio
import sqlite3

from bot.telegram.streaming import LiveReply
from tests.fakes import Reply
from tests.helpers import drafts_unavailable


def _long_answer(paragraphs: int, words: int = 60) -> str:
    return "\n\n".join(
        " ".join(f"word{p}_{w}" for w in range(words)) + "." for p in range(paragraphs)
    )


async def test_answer_streams_into_drafts_then_arrives_whole(
    fake_telegram, fake_llm, make_settings, start_bot
):
    answer = "Refunds reach your account within 5 to 10 working days after we receive the item."
    fake_llm.script(Reply.text(answer, chunks=8, chunk_delay=0.05))
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(2001, "How long does a refund take?")
    texts = await fake_telegram.wait_for_messages(2001, 1)
    assert texts == [answer]
    drafts = fake_telegram.drafts(2001)
    assert drafts, "the answer was not shown while it was written"
    assert all(answer.startswith(d["text"]) for d in drafts)
    assert fake_llm.last_request["stream"] is True
    assert fake_llm.last_request["stream_options"] == {"include_usage": True}


async def test_without_drafts_one_message_is_edited_within_flood_limits(
    fake_telegram, fake_llm, make_settings, start_bot
):
    fake_telegram.enforce_limits = True
    drafts_unavailable(fake_telegram)
    answer = _long_answer(3, 40)
    fake_llm.script(Reply.text(answer, chunks=40, chunk_delay=0.05))
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(2002, "Tell me everything about shipping")
    await fake_telegram.wait_for(lambda: fake_telegram.sent_messages(2002) == [answer], timeout=15)
    assert fake_telegram.too_many_requests == 0
    edits = fake_telegram.calls("editMessageText")
    assert edits, "the preview was never updated"
    texts = [c.params["text"] for c in edits]
    assert len(texts) == len(set(texts)), "a message was edited with unchanged text"


async def test_long_streamed_answer_continues_in_new_messages(
    fake_telegram, fake_llm, make_settings, start_bot
):
    drafts_unavailable(fake_telegram)
    answer = _long_answer(28, 60)  # about 15,700 characters
    assert len(answer) > 3 * 4096
    fake_llm.script(Reply.text(answer, chunks=60, chunk_delay=0.01))
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(2003, "Tell me a lot")
    await fake_telegram.wait_for(
        lambda: (
            "".join(fake_telegram.sent_messages(2003)).replace("\n", "").replace(" ", "")
            == answer.replace("\n", "").replace(" ", "")
        ),
        timeout=20,
    )
    messages = fake_telegram.sent_messages(2003)
    assert len(messages) >= 4
    assert all(len(m) <= 4096 for m in messages)
    assert all(m.endswith(".") for m in messages), "a message was cut inside a paragraph"


async def test_escalation_tool_call_works_while_streaming(
    fake_telegram, fake_llm, make_settings, start_bot, tmp_path
):
    fake_llm.script(
        Reply.tool_call("escalate", {"reason": "legal", "summary": "Customer threatens to sue."})
    )
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(2004, "This is outrageous, fix my order now")
    texts = await fake_telegram.wait_for_messages(2004, 1)
    assert "#1" in texts[0]
    assert fake_llm.last_request["stream"] is True
    db = sqlite3.connect(tmp_path / "bot.sqlite3")
    row = db.execute("SELECT reason, summary FROM tickets").fetchone()
    assert row == ("model", "Customer threatens to sue.")


async def test_streaming_can_be_switched_off(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    bot_yaml = config / "bot.yaml"
    bot_yaml.write_text(bot_yaml.read_text().replace("streaming: true", "streaming: false"))
    await start_bot(make_settings(fake_telegram, fake_llm))
    fake_telegram.user_text(2005, "How long does a refund take?")
    await fake_telegram.wait_for_messages(2005, 1)
    assert "stream" not in fake_llm.last_request
    assert fake_telegram.drafts(2005) == []


async def test_a_burst_of_replies_to_one_chat_stays_under_the_flood_limit(
    fake_telegram, make_settings, start_bot
):
    fake_telegram.enforce_limits = True
    await start_bot(make_settings(fake_telegram))  # FAQ-only: instant answers
    for _ in range(8):
        fake_telegram.user_text(2006, "How long does a refund take?")
    await fake_telegram.wait_for(lambda: len(fake_telegram.sent_messages(2006)) >= 8, timeout=20)
    assert fake_telegram.too_many_requests == 0


async def test_no_preview_once_the_model_has_finished():
    """A busy bot can be slower than ``first_delay`` between the model's last chunk and
    the final message; the preview would then be replaced at once, a wasted call."""

    class Bot:
        drafts = 0

        async def send_message_draft(self, *args, **kwargs):
            Bot.drafts += 1

    live = LiveReply(Bot(), 1, first_delay=0.01)
    await live.on_text("The whole answer")
    live.model_done()
    await asyncio.sleep(0.05)
    assert Bot.drafts == 0

    slow = LiveReply(Bot(), 1, first_delay=0.01)
    await slow.on_text("Still being written")
    await asyncio.sleep(0.05)
    assert Bot.drafts == 1
