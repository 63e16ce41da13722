"""Photos, voice notes and files from customers, end to end.

The bot runs against the Bot API double (which serves getFile and the file download
path) and the LLM double (which checks image content parts and serves
/v1/audio/transcriptions) over real HTTP; what was stored is read from SQLite.
"""

from __future__ import annotations

import base64

import pytest

from tests.fakes import Reply, TgUser
from tests.fakes.telegram_files import JPEG
from tests.helpers import buttons, database, faq_answer, handled, persona_message, rows, tune

CUSTOMER = TgUser(id=5001, first_name="Rosa", last_name="Reed")
STAFF = -1009100
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def attachments(settings) -> list[dict]:
    return [
        dict(r)
        for r in rows(
            database(settings),
            "SELECT a.kind, a.file_id, a.mime, a.size, a.duration, a.transcript, a.outcome, "
            "m.kind AS message_kind, m.text FROM attachments a "
            "JOIN messages m ON m.id = a.message_id ORDER BY a.id",
        )
    ]


def customer_messages(settings) -> list[tuple]:
    found = rows(database(settings), "SELECT kind, text FROM messages WHERE role = 'customer'")
    return [tuple(r) for r in found]


def voice(words: str) -> bytes:
    """OGG bytes the LLM double transcribes as ``words``."""
    return b"OggS" + words.encode()


def staff_in_thread(fake, thread_id: int) -> list[dict]:
    return [m for m in fake.bot_messages(STAFF) if m.get("message_thread_id") == thread_id]


# -- captions and photos ------------------------------------------------------------------


async def test_captioned_photo_is_answered_from_the_damaged_parcel_entry(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    _, faq = knowledge_dirs
    settings = make_settings(fake_telegram)  # FAQ-only: no model configured
    bot = await start_bot(settings)
    update = fake_telegram.user_photo(CUSTOMER.id, CUSTOMER, caption="my parcel arrived damaged")
    texts = await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    await handled(fake_telegram, settings, update)
    assert texts == [faq_answer(faq, "damaged_parcel")]
    assert customer_messages(settings) == [("photo", "my parcel arrived damaged")]
    photo = fake_telegram._history[-1]["message"]["photo"]
    [stored] = attachments(settings)
    assert stored["kind"] == "photo" and stored["outcome"] == "attached"
    assert stored["file_id"] == photo[-1]["file_id"], "kept by the largest size's file id"
    assert fake_telegram.downloads == [], "nothing to look at without a model that can see"
    metrics = bot.metrics.render()[0].decode()
    assert 'support_bot_media_total{kind="photo",outcome="attached"} 1.0' in metrics


async def test_vision_sends_the_photo_within_the_pixel_budget(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    tune(config, vision="true", vision_max_pixels="500000", streaming="false")
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    fake_telegram.user_photo(CUSTOMER.id, CUSTOMER, caption="my parcel arrived damaged")
    await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    sizes = fake_telegram._history[-1]["message"]["photo"]
    assert fake_telegram.downloads == [sizes[2]["file_id"]], "800x600 is the largest within budget"
    [image] = fake_llm.images
    assert image["mime"] == "image/jpeg" and image["data"] == JPEG
    user = fake_llm.last_request["messages"][-1]
    assert user["role"] == "user"
    assert user["content"][0] == {"type": "text", "text": "my parcel arrived damaged"}
    assert user["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert attachments(settings)[0]["outcome"] == "seen"
    audit = rows(database(settings), "SELECT request_json FROM answers WHERE path = 'llm'")
    assert "base64" not in audit[0]["request_json"], "the picture itself is never stored"
    assert "not kept" in audit[0]["request_json"]

    # A photo alone is shown to the model too; one whose download fails is answered
    # from its caption, and the customer is told the picture was not seen.
    fake_telegram.user_photo(CUSTOMER.id, CUSTOMER)
    await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert fake_llm.last_request["messages"][-1]["content"][0]["type"] == "image_url"
    fake_telegram.fail_downloads(500)
    fake_telegram.user_photo(CUSTOMER.id, CUSTOMER, caption="is this scratch covered?")
    texts = await fake_telegram.wait_for_messages(CUSTOMER.id, 4)
    assert texts[2] == persona_message(config, "media_caption_only")
    assert texts[3] == "Answer to: is this scratch covered?"
    assert len(fake_llm.images) == 2
    assert [a["outcome"] for a in attachments(settings)] == ["seen", "seen", "unavailable"]


async def test_photo_without_vision_is_told_the_truth_and_reaches_staff_with_the_ticket(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(fake_telegram, STAFF_CHAT_ID=str(STAFF))
    await start_bot(settings)
    fake_telegram.user_photo(CUSTOMER.id, CUSTOMER)
    fake_telegram.user_document(CUSTOMER.id, CUSTOMER, file_name="receipt.pdf")
    texts = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert texts == [
        persona_message(config, "media_no_vision"),
        persona_message(config, "media_file_kept"),
    ]
    notice = fake_telegram.bot_messages(CUSTOMER.id)[0]
    person = persona_message(config, "talk_to_person_button")
    assert buttons(notice) == [(person, "human")]

    fake_telegram.callback_query(CUSTOMER.id, CUSTOMER, "human", notice["message_id"])
    thread_id = next(iter(await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF))))
    copies = await fake_telegram.wait_for(
        lambda: (
            [
                m
                for m in staff_in_thread(fake_telegram, thread_id)
                if "photo" in m or "document" in m
            ]
            if len(staff_in_thread(fake_telegram, thread_id)) >= 4
            else None
        )
    )
    card, header = staff_in_thread(fake_telegram, thread_id)[:2]
    assert "[photo]" in card["text"] and "[document]" in card["text"]
    assert header["text"] == persona_message(config, "staff_earlier_attachments")
    assert ["photo" in copies[0], copies[1]["document"]["file_name"]] == [True, "receipt.pdf"]
    # A reply to a copy reaches the customer, like a reply anywhere in the topic.
    copied = {c["message_id"] for c in copies}
    await fake_telegram.wait_for(
        lambda: (
            copied
            <= {
                r[0]
                for r in rows(database(settings), "SELECT staff_message_id FROM relayed_messages")
            }
        )
    )


# -- voice notes ----------------------------------------------------------------------------


async def test_voice_note_is_answered_as_its_transcript(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    tune(config, transcription_language='"en"')
    settings = make_settings(
        fake_telegram, fake_llm, LLM_TRANSCRIPTION_MODEL="whisper-1", LLM_API_KEY="sk-test"
    )
    bot = await start_bot(settings)
    fake_telegram.user_voice(CUSTOMER.id, CUSTOMER, data=voice("How long does a refund take?"))
    texts = await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    assert texts == ["Answer to: How long does a refund take?"]
    [request] = fake_llm.transcription_requests
    assert request["model"] == "whisper-1" and request["language"] == "en"
    assert (request["filename"], request["content_type"]) == ("voice.ogg", "audio/ogg")
    assert request["data"] == voice("How long does a refund take?")
    headers = [h for h in fake_llm.headers if h.get("Authorization") == "Bearer sk-test"]
    assert headers, "the provider's key goes with the provider's requests"
    assert fake_llm.last_request["messages"][-1] == {
        "role": "user",
        "content": "How long does a refund take?",
    }
    assert customer_messages(settings) == [("voice", "How long does a refund take?")]
    [stored] = attachments(settings)
    assert (stored["transcript"], stored["outcome"], stored["duration"]) == (
        "How long does a refund take?",
        "transcribed",
        3,
    )
    metrics = bot.metrics.render()[0].decode()
    assert 'support_bot_media_total{kind="voice",outcome="transcribed"} 1.0' in metrics


async def test_faq_only_bot_transcribes_through_its_own_speech_server(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, faq = knowledge_dirs
    tune(config, transcription_base_url=f'"{fake_llm.base_url}"')
    settings = make_settings(fake_telegram, LLM_TRANSCRIPTION_MODEL="Systran/faster-whisper-small")
    assert not settings.env.llm_configured
    await start_bot(settings)
    fake_telegram.user_voice(CUSTOMER.id, CUSTOMER, data=voice("How can I return an item?"))
    texts = await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    assert texts == [faq_answer(faq, "how_to_return")]
    assert fake_llm.transcription_requests[0]["model"] == "Systran/faster-whisper-small"
    assert fake_llm.requests == []


async def test_staff_see_the_transcript_and_can_play_the_voice_note(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    fake_telegram.add_forum_group(STAFF)
    settings = make_settings(
        fake_telegram, fake_llm, STAFF_CHAT_ID=str(STAFF), LLM_TRANSCRIPTION_MODEL="whisper-1"
    )
    await start_bot(settings)
    fake_telegram.user_text(CUSTOMER.id, "I want to talk to a human", CUSTOMER)
    thread_id = next(iter(await fake_telegram.wait_for(lambda: fake_telegram.topics(STAFF))))
    fake_telegram.user_voice(CUSTOMER.id, CUSTOMER, data=voice("The sofa leg snapped off."))
    copied = await fake_telegram.wait_for(
        lambda: [m for m in staff_in_thread(fake_telegram, thread_id) if "voice" in m]
    )
    expected = persona_message(
        config,
        "staff_voice_transcript",
        name="Rosa Reed",
        transcript="The sofa leg snapped off.",
    )
    assert copied[0]["caption"] == expected
    assert (
        copied[0]["voice"]["file_id"] == fake_telegram._history[-1]["message"]["voice"]["file_id"]
    )
    assert len(fake_telegram.sent_messages(CUSTOMER.id)) == 1, "staff answer, not the bot"
    assert fake_llm.requests == []
    assert attachments(settings)[0]["transcript"] == "The sofa leg snapped off."
    assert customer_messages(settings)[-1] == ("voice", "The sofa leg snapped off.")


@pytest.mark.parametrize(
    "failure, outcome",
    [
        (Reply.http_error(500), "transcription_failed"),
        (Reply.http_error(413, "Maximum content size limit exceeded"), "transcription_too_large"),
        (Reply.http_error(415, "Unsupported media type"), "transcription_unsupported"),
        (Reply.hang(), "transcription_timeout"),
    ],
    ids=["500", "413", "415", "timeout"],
)
async def test_failed_transcription_gets_a_clear_reply_and_nothing_is_lost(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs, failure, outcome
):
    config, _ = knowledge_dirs
    tune(config, transcription_timeout_seconds="0.5")
    settings = make_settings(fake_telegram, fake_llm, LLM_TRANSCRIPTION_MODEL="whisper-1")
    await start_bot(settings)
    fake_llm.script_transcription(failure)
    update = fake_telegram.user_voice(CUSTOMER.id, CUSTOMER, data=voice("Where is my order?"))
    texts = await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    await handled(fake_telegram, settings, update)
    assert texts == [persona_message(config, "voice_failed")]
    assert buttons(fake_telegram.bot_messages(CUSTOMER.id)[0])[0][1] == "human"
    assert customer_messages(settings) == [("voice", None)]
    [stored] = attachments(settings)
    assert stored["outcome"] == outcome and stored["file_id"]
    assert fake_llm.requests == []


async def test_voice_limits_and_a_bot_without_transcription(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    settings = make_settings(fake_telegram, fake_llm, LLM_TRANSCRIPTION_MODEL="whisper-1")
    await start_bot(settings)
    fake_telegram.user_voice(CUSTOMER.id, CUSTOMER, duration=121, data=voice("long story"))
    fake_telegram.user_audio(CUSTOMER.id, CUSTOMER, mime_type="audio/x-ms-wma")
    texts = await fake_telegram.wait_for_messages(CUSTOMER.id, 2)
    assert texts[0] == persona_message(config, "voice_too_long", seconds="121", limit="120")
    assert texts[1] == persona_message(config, "media_unsupported", format="audio/x-ms-wma")
    assert fake_llm.transcription_requests == [] and fake_telegram.downloads == []
    assert [a["outcome"] for a in attachments(settings)] == ["too_long", "unsupported"]


async def test_without_transcription_the_customer_is_asked_to_type(
    fake_telegram, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    settings = make_settings(fake_telegram)
    await start_bot(settings)
    fake_telegram.user_voice(CUSTOMER.id, CUSTOMER, data=voice("hello"))
    texts = await fake_telegram.wait_for_messages(CUSTOMER.id, 1)
    assert texts == [persona_message(config, "voice_no_transcription")]
    assert [label for label, _ in buttons(fake_telegram.bot_messages(CUSTOMER.id)[0])] == [
        persona_message(config, "talk_to_person_button")
    ]
    assert attachments(settings)[0]["outcome"] == "no_transcription"


# -- files the bot cannot use ----------------------------------------------------------------


async def test_oversized_corrupt_unsupported_and_failed_files_are_told_kept_and_forgotten(
    fake_telegram, fake_llm, make_settings, start_bot, knowledge_dirs
):
    config, _ = knowledge_dirs
    tune(config, vision="true", max_download_mb="1", download_timeout_seconds="0.5")
    settings = make_settings(fake_telegram, fake_llm)
    await start_bot(settings)
    chat = CUSTOMER.id
    fake_telegram.user_photo(chat, CUSTOMER, declared_size=5 * 1024 * 1024)
    fake_telegram.user_document(
        chat, CUSTOMER, "photo.jpg", data=b"<html>not a picture</html>", mime_type="image/jpeg"
    )
    fake_telegram.user_photo(chat, CUSTOMER, data=b"")
    fake_telegram.user_document(
        chat, CUSTOMER, "IMG_0042.heic", data=b"heic", mime_type="image/heic"
    )
    await fake_telegram.wait_for_messages(chat, 4)
    fake_telegram.fail_next(
        "getFile", 400, "Bad Request: wrong file_id or the file is temporarily unavailable"
    )
    fake_telegram.user_photo(chat, CUSTOMER)
    await fake_telegram.wait_for_messages(chat, 5)
    fake_telegram.delay_downloads(2.0)
    update = fake_telegram.user_document(
        chat, CUSTOMER, "label.png", data=PNG, mime_type="image/png"
    )
    texts = await fake_telegram.wait_for_messages(chat, 6, timeout=10)
    await handled(fake_telegram, settings, update)
    assert texts == [
        persona_message(config, "media_too_large", limit_mb="1"),
        persona_message(config, "media_unreadable"),
        persona_message(config, "media_unreadable"),
        persona_message(config, "media_unsupported", format="image/heic"),
        persona_message(config, "media_download_failed"),
        persona_message(config, "media_download_failed"),
    ]
    person = persona_message(config, "talk_to_person_button")
    assert all(buttons(m) == [(person, "human")] for m in fake_telegram.bot_messages(chat))
    assert [a["outcome"] for a in attachments(settings)] == [
        "too_large",
        "corrupt",
        "empty",
        "unsupported",
        "unavailable",
        "timeout",
    ]
    assert [k for k, _ in customer_messages(settings)] == ["photo", "document"] * 2 + [
        "photo",
        "document",
    ]
    assert fake_llm.requests == [] and fake_llm.images == []

    # /forget removes the file ids along with the messages.
    fake_telegram.user_text(chat, "/forget", CUSTOMER)
    await fake_telegram.wait_for_messages(chat, 7)
    confirm = fake_telegram.bot_messages(chat)[-1]
    fake_telegram.callback_query(chat, CUSTOMER, "forget:yes", confirm["message_id"])
    await fake_telegram.wait_for_messages(chat, 8)
    assert rows(database(settings), "SELECT * FROM attachments") == []
    assert customer_messages(settings) == []


async def test_getfile_refusing_a_file_over_20_mb_is_too_large(fake_telegram):
    """Telegram's own limit, seen through the bot's fetcher against the double."""
    from telegram import Bot

    from bot.media import MediaError
    from bot.telegram.media import TelegramFetcher

    meta = fake_telegram.add_file(b"x", kind="document")
    fake_telegram._files_meta[meta["file_id"]]["file_size"] = 25 * 1024 * 1024
    async with Bot(fake_telegram.token, base_url=fake_telegram.base_url) as bot:
        with pytest.raises(MediaError) as refused:
            await TelegramFetcher(bot).fetch(meta["file_id"], 50 * 1024 * 1024)
    assert refused.value.reason == "too_large"


# -- the core without Telegram ------------------------------------------------------------------


class BytesFetcher:
    """A door that already holds the bytes, as the terminal or another messenger might."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files

    async def fetch(self, file_id: str, max_bytes: int) -> bytes:
        return self.files[file_id]


async def test_the_core_takes_attachments_from_any_door(fake_llm, make_settings, knowledge_dirs):
    from bot.core import Incoming
    from bot.media import Attachment
    from bot.services import open_services
    from bot.store.conversations import Customer

    config, _ = knowledge_dirs
    tune(config, vision="true", streaming="false")
    services = await open_services(
        make_settings(llm=fake_llm), fetcher=BytesFetcher({"scan-1": PNG})
    )
    try:
        incoming = Incoming(
            Customer(chat_id=77, first_name="Terminal"),
            "is this the right screw?",
            kind="document",
            attachments=(Attachment("document", "scan-1", mime="image/png", size=len(PNG)),),
        )
        outcome = await services.core.handle(incoming)
    finally:
        await services.close()
    assert outcome.replies[0].text == "Answer to: is this the right screw?"
    [image] = fake_llm.images
    assert image["mime"] == "image/png" and image["data"] == PNG
    url = fake_llm.last_request["messages"][-1]["content"][1]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == PNG


def test_image_size_and_type_are_chosen_by_pixels_and_signature():
    from bot.images import ImageSize, image_type, pick_size

    sizes = tuple(
        ImageSize(f"f{w}", f"u{w}", w, h) for w, h in ((90, 90), (800, 800), (2560, 2560))
    )
    assert pick_size(sizes, 1_000_000).file_id == "f800"
    assert pick_size(sizes, 100).file_id == "f90", "none fits: the smallest, not nothing"
    assert image_type(JPEG) == "image/jpeg" and image_type(PNG) == "image/png"
    assert image_type(b"RIFF\x10\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert image_type(b"GIF89a") is None and image_type(b"") is None
