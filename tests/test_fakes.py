"""The doubles must behave like the real services, or tests built on them prove nothing.

Each check drives a double with the production client (python-telegram-bot, httpx) and
asserts what those clients see: parsed objects, the exception classes, retry hints.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dtm
import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import telegram
from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity, ReplyParameters
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, RetryAfter

from tests.fakes import FakeLLM, FakeTelegram, Reply, TgUser, embed
from tests.fakes.telegram_files import JPEG

ROOT = Path(__file__).resolve().parent.parent
CUSTOMER = TgUser(id=5001, first_name="Ana", username="ana_b", language_code="pt")
STAFF = TgUser(id=7001, first_name="Sam", username="sam_support")


@pytest.fixture
async def tg():
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def bot(tg):
    async with telegram.Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url) as b:
        yield b


@pytest.fixture
async def llm():
    async with FakeLLM() as fake:
        yield fake


@pytest.fixture
async def client(llm):
    async with httpx.AsyncClient(base_url=llm.base_url, timeout=5) as c:
        yield c


def chat_request(text: str = "Where is my order?", **extra) -> dict:
    return {"model": "fake-model", "messages": [{"role": "user", "content": text}], **extra}


async def read_stream(client: httpx.AsyncClient, body: dict) -> tuple[list[dict], list[str]]:
    """Return the decoded data chunks and the raw lines of an SSE response."""
    chunks, lines = [], []
    async with client.stream("POST", "/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            lines.append(line)
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line[len("data: ") :]))
    return chunks, lines


# ---------------------------------------------------------------------- Telegram: basics


async def test_get_me_describes_the_bot(bot, tg):
    me = await bot.get_me()
    assert me.is_bot and me.username == "shop_support_bot"
    assert me.can_join_groups is True
    assert tg.calls("getMe")[0].ok


async def test_send_message_returns_a_complete_message(bot, tg):
    keyboard = InlineKeyboardMarkup(
        [[InlineKeyboardButton("Talk to a human", callback_data="handoff")]]
    )
    first = await bot.send_message(CUSTOMER.id, "Hello!")
    reply = await bot.send_message(
        CUSTOMER.id,
        "<b>Order</b> shipped",
        parse_mode="HTML",
        reply_markup=keyboard,
        reply_parameters=ReplyParameters(first.message_id),
    )
    assert reply.text == "Order shipped"
    assert reply.entities[0].type == "bold" and reply.entities[0].length == 5
    assert reply.from_user.username == "shop_support_bot"
    assert reply.chat.type == "private" and reply.chat.id == CUSTOMER.id
    assert reply.reply_to_message.message_id == first.message_id
    assert reply.reply_markup == keyboard
    assert reply.message_id == first.message_id + 1
    assert tg.sent_messages(CUSTOMER.id) == ["Hello!", "Order shipped"]
    params = tg.calls("sendMessage")[1].params
    assert params["chat_id"] == CUSTOMER.id and params["parse_mode"] == "HTML"
    assert params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "handoff"


async def test_text_limits_are_enforced(bot, tg):
    await bot.send_message(1, "x" * 4096)
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(1, "x" * 4097)
    with pytest.raises(BadRequest, match="(?i)message text is empty"):
        await bot.send_message(1, "   ")
    assert tg.sent_messages(1) == ["x" * 4096]


async def test_text_length_counts_code_points_not_utf16_units(bot, tg):
    # A live probe: 4,096 emoji (8,192 UTF-16 units) are accepted, 4,097 are not.
    await bot.send_message(1, "😀" * 4096)
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(1, "😀" * 4097)
    assert tg.sent_messages(1) == ["😀" * 4096]


async def test_explicit_entities_are_read_and_recorded(bot, tg):
    entities = [
        MessageEntity("bold", 3, 6),
        MessageEntity("text_link", 10, 6, url="https://a.example"),
    ]
    sent = await bot.send_message(1, "😀 жирный ссылка", entities=entities)
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [
        ("bold", 3, 6),
        ("text_link", 10, 6),
    ]
    assert "parse_mode" not in tg.calls("sendMessage")[0].params
    assert isinstance(tg.calls("sendMessage")[0].params["entities"], list)  # decoded JSON
    assert tg.bot_messages(1)[0]["entities"][1]["url"] == "https://a.example"
    await bot.send_message_draft(1, 9, "😀 жир", entities=[MessageEntity("bold", 3, 3)])
    assert tg.drafts(1)[0]["entities"] == [{"type": "bold", "offset": 3, "length": 3}]


@pytest.mark.parametrize(
    ("entities", "description"),
    [
        (
            [{"type": "sparkle", "offset": 0, "length": 2}],
            "can't parse MessageEntity: Unsupported type specified",
        ),
        (
            [{"type": "bold", "offset": 0}],
            "can't parse MessageEntity: Can't find field \"length\"",
        ),
        (
            [{"type": "bold", "offset": 2, "length": 2}],  # "😀x" is 3 UTF-16 units
            "entity beginning at UTF-16 offset 2 ends after the end of the text at UTF-16 offset 3",
        ),
        (
            [{"type": "text_link", "offset": 0, "length": 1, "url": "nodot"}],
            "entity URL 'nodot' is invalid: Wrong HTTP URL",
        ),
        (
            [{"type": "text_link", "offset": 0, "length": 1, "url": "javascript:alert(1)"}],
            "entity URL 'javascript:alert(1)' is invalid: Unsupported URL protocol",
        ),
        ([{"type": "bold", "offset": 0, "length": 1}] * 101, "ENTITIES_TOO_LONG"),
        ("[{not json", "can't parse entities JSON object"),
    ],
    ids=["type", "field", "range", "url", "protocol", "count", "json"],
)
async def test_entities_telegram_refuses_are_refused_with_its_words(tg, entities, description):
    encoded = entities if isinstance(entities, str) else json.dumps(entities)
    async with httpx.AsyncClient(base_url=tg.api_url) as http:
        answer = await http.post(
            "/sendMessage", data={"chat_id": "1", "text": "😀x", "entities": encoded}
        )
    assert answer.status_code == 400
    assert answer.json()["description"] == f"Bad Request: {description}"
    assert tg.sent_messages(1) == []


async def test_a_hundred_entities_are_accepted_and_detected_types_ignored(bot, tg):
    text = "a " * 100
    entities = [MessageEntity("italic", 2 * n, 1) for n in range(100)]
    entities.append(MessageEntity("url", 0, 1))  # found by Telegram itself: ignored, not counted
    sent = await bot.send_message(1, text, entities=entities)
    assert len(sent.entities) == 100


@pytest.mark.parametrize(
    "text",
    ["a < b", "<b>unclosed", "<b>x</i>", "line<br>break", "</b>", "<span>x</span>"],
)
async def test_malformed_html_is_rejected(bot, text):
    with pytest.raises(BadRequest, match="(?i)can't parse entities"):
        await bot.send_message(1, text, parse_mode="HTML")


async def test_valid_html_and_markdown_v2_are_accepted(bot):
    html = await bot.send_message(
        1, '<a href="https://shop.example/o/1">Order &amp; invoice</a> <i>ok</i>', parse_mode="HTML"
    )
    assert html.text == "Order & invoice ok"
    assert html.entities[0].url == "https://shop.example/o/1"
    md = await bot.send_message(1, r"*Total:* 10\.50 EUR \(paid\)", parse_mode="MarkdownV2")
    assert md.text == "Total: 10.50 EUR (paid)"
    assert md.entities[0].type == "bold"
    with pytest.raises(BadRequest, match="(?i)can't parse entities.*reserved"):
        await bot.send_message(1, "Total: 10.50 EUR", parse_mode="MarkdownV2")


async def test_edits_follow_telegram_rules(bot, tg):
    sent = await bot.send_message(1, "Thinking")
    edited = await bot.edit_message_text("Thinking...", chat_id=1, message_id=sent.message_id)
    assert edited.text == "Thinking..." and edited.edit_date is not None
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("Thinking...", chat_id=1, message_id=sent.message_id)
    with pytest.raises(BadRequest, match="(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=1, message_id=999)
    assert tg.sent_messages(1) == ["Thinking..."]
    assert await bot.delete_message(1, sent.message_id)
    assert tg.sent_messages(1) == []


async def test_wrong_token_and_unknown_method(tg):
    other = telegram.Bot("999:wrong", base_url=tg.base_url)
    with pytest.raises(InvalidToken):
        await other.initialize()
    await other.shutdown()
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{tg.api_url}/noSuchMethod")
    assert response.status_code == 404
    assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


# ---------------------------------------------------------------------- Telegram: faults


async def test_scripted_429_becomes_retry_after(bot, tg):
    tg.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(1, "hi")
    assert caught.value.retry_after == dtm.timedelta(seconds=7)
    assert tg.too_many_requests == 1
    await bot.send_message(1, "hi")
    assert tg.sent_messages(1) == ["hi"]


async def test_blocked_user_gives_forbidden(bot, tg):
    tg.block(CUSTOMER.id)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(CUSTOMER.id, "hi")
    tg.unblock(CUSTOMER.id)
    await bot.send_message(CUSTOMER.id, "hi")


async def test_fault_predicate_and_get_updates_500(bot, tg):
    remove = tg.fail_when(
        lambda method, p: p.get("chat_id") == 2, 400, "Bad Request: chat not found"
    )
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(2, "x")
    remove()
    await bot.send_message(2, "x")
    tg.fail_next("getUpdates", 500)
    with pytest.raises(telegram.error.NetworkError):
        await bot.get_updates()


@contextlib.asynccontextmanager
async def limited(now: list[float]):
    """A double enforcing flood limits on a hand-driven clock, and a bot talking to it."""
    async with (
        FakeTelegram(enforce_limits=True, clock=lambda: now[0]) as tg,
        telegram.Bot(tg.token, base_url=tg.base_url) as bot,
    ):
        yield tg, bot


async def test_flood_limits_per_private_chat():
    now = [1000.0]
    async with limited(now) as (tg, bot):
        for _ in range(3):
            await bot.send_message(1, "burst")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(1, "too fast")
        assert caught.value.retry_after == dtm.timedelta(seconds=1)
        await bot.send_message(2, "another chat is independent")
        now[0] += 1.0
        await bot.send_message(1, "after waiting")
        assert tg.too_many_requests == 1


async def test_flood_limits_per_group():
    now = [1000.0]
    async with limited(now) as (_, bot):
        for i in range(20):
            now[0] += 0.1
            await bot.send_message(-100, f"m{i}")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(-100, "one too many")
        assert 55 <= caught.value.retry_after.total_seconds() <= 60


async def test_dropped_connection_is_a_network_error(bot, tg):
    tg.fail_next("sendMessage", 0)
    with pytest.raises(telegram.error.NetworkError):
        await bot.send_message(1, "lost")
    assert tg.calls("sendMessage")[0].status == 0
    await bot.send_message(1, "delivered")
    assert tg.sent_messages(1) == ["delivered"]


async def test_edits_and_all_chats_share_the_global_budget():
    now = [1000.0]
    async with limited(now) as (tg, bot):
        sent = await bot.send_message(1, "v0")
        await bot.edit_message_text("v1", chat_id=1, message_id=sent.message_id)
        await bot.edit_message_text("v2", chat_id=1, message_id=sent.message_id)
        with pytest.raises(RetryAfter):
            await bot.edit_message_text("v3", chat_id=1, message_id=sent.message_id)
        for chat_id in range(100, 127):  # 3 + 27 = 30 accepted this second
            await bot.send_message(chat_id, "broadcast")
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(999, "the 31st message in a second")
        assert caught.value.retry_after == dtm.timedelta(seconds=1)
        assert tg.too_many_requests == 2


async def test_raw_json_and_get_requests_are_understood(tg):
    async with httpx.AsyncClient(base_url=tg.api_url) as http:
        me = (await http.get("/getMe")).json()
        assert me["ok"] is True and me["result"]["username"] == "shop_support_bot"
        markup = {"inline_keyboard": [[{"text": "Yes", "callback_data": "y"}]]}
        sent = await http.post(
            "/sendMessage", json={"chat_id": 4, "text": "12345", "reply_markup": markup}
        )
        result = sent.json()["result"]
        assert result["text"] == "12345" and result["reply_markup"] == markup
        too_long = await http.post("/sendMessage", data={"chat_id": "4", "text": "é" * 4097})
        assert too_long.status_code == 400
        assert too_long.json() == {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: message is too long",
        }


# ---------------------------------------------------------------------- Telegram: updates


async def test_get_updates_returns_injected_update(bot, tg):
    update_id = tg.user_text(CUSTOMER.id, "Where is my order?", user=CUSTOMER)
    updates = await bot.get_updates(timeout=1)
    assert len(updates) == 1 and isinstance(updates[0], telegram.Update)
    update = updates[0]
    assert update.update_id == update_id
    assert update.message.text == "Where is my order?"
    assert update.message.from_user.username == "ana_b"
    assert update.message.from_user.language_code == "pt"
    assert update.effective_chat.type == "private"
    # Without an offset the update is delivered again; the offset acknowledges it.
    assert (await bot.get_updates())[0].update_id == update_id
    assert await bot.get_updates(offset=update_id + 1) == ()
    assert tg.pending_updates == []


async def test_get_updates_limit_and_allowed_updates(bot, tg):
    first = tg.user_text(1, "a")
    tg.user_text(1, "b")
    sent = await bot.send_message(1, "menu")
    tg.callback_query(1, 1, "pick", sent.message_id)
    assert [u.update_id for u in await bot.get_updates(limit=1)] == [first]
    only_queries = await bot.get_updates(allowed_updates=["callback_query"])
    assert [u.callback_query.data for u in only_queries] == ["pick"]


async def test_long_poll_wakes_as_soon_as_an_update_arrives(bot, tg):
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, tg.user_text, 1, "hello")
    started = loop.time()
    updates = await bot.get_updates(timeout=10)
    assert updates[0].message.text == "hello"
    assert loop.time() - started < 1.0


async def test_second_poller_conflicts_with_the_first(bot, tg):
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await tg.wait_for(lambda: tg.waiting_polls == 1)
    async with telegram.Bot(tg.token, base_url=tg.base_url) as second_instance:
        assert await second_instance.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates"):
        await first


async def test_other_update_kinds_parse(bot, tg):
    sent = await bot.send_message(
        CUSTOMER.id,
        "Pick one",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]]),
    )
    tg.user_photo(CUSTOMER.id, CUSTOMER, caption="broken item")
    tg.user_sticker(CUSTOMER.id)
    tg.user_voice(CUSTOMER.id)
    tg.user_document(CUSTOMER.id, file_name="receipt.pdf")
    tg.user_location(CUSTOMER.id, 38.72, -9.14)
    first = tg.user_text(CUSTOMER.id, "typo")
    tg.edited_text(CUSTOMER.id, tg.pending_updates[-1]["message"]["message_id"], "fixed")
    query_update = tg.callback_query(CUSTOMER.id, CUSTOMER, "yes", sent.message_id)
    updates = await bot.get_updates()
    kinds = [
        u.message.photo
        and "photo"
        or u.message.sticker
        and "sticker"
        or u.message.voice
        and "voice"
        or u.message.document
        and "document"
        or u.message.location
        and "location"
        or "text"
        for u in updates[:6]
    ]
    assert kinds == ["photo", "sticker", "voice", "document", "location", "text"]
    assert updates[0].message.caption == "broken item"
    assert updates[5].update_id == first
    assert updates[6].edited_message.text == "fixed"
    query = updates[7].callback_query
    assert query.data == "yes" and query.message.message_id == sent.message_id
    assert await query.answer("Noted")
    assert tg.callback_answer(query_update)["text"] == "Noted"
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await query.answer("again")
    photo_file = await bot.get_file(updates[0].message.photo[-1].file_id)
    assert bytes(await photo_file.download_as_bytearray()) == JPEG


async def test_forum_topics_and_group_messages(bot, tg):
    tg.add_group(-200, "Plain")
    with pytest.raises(BadRequest, match="(?i)the chat is not a forum"):
        await bot.create_forum_topic(-200, "Ticket")
    tg.add_forum_group(-100)
    topic = await bot.create_forum_topic(-100, "Ticket #1 Ana")
    assert topic.name == "Ticket #1 Ana" and topic.message_thread_id > 1
    sent = await bot.send_message(
        -100, "Customer says hi", message_thread_id=topic.message_thread_id
    )
    assert sent.message_thread_id == topic.message_thread_id and sent.is_topic_message
    tg.group_text(-100, "On it", STAFF, message_thread_id=topic.message_thread_id)
    tg.group_text(-100, "Reply", STAFF, reply_to_message_id=sent.message_id)
    updates = await bot.get_updates()
    assert updates[0].message.message_thread_id == topic.message_thread_id
    assert updates[0].message.from_user.username == "sam_support"
    assert updates[1].message.reply_to_message.message_id == sent.message_id
    assert updates[1].message.message_thread_id == topic.message_thread_id
    assert await bot.close_forum_topic(-100, topic.message_thread_id)
    with pytest.raises(BadRequest, match="(?i)topic_closed"):
        await bot.send_message(-100, "late", message_thread_id=topic.message_thread_id)
    assert await bot.reopen_forum_topic(-100, topic.message_thread_id)
    assert await bot.edit_forum_topic(-100, topic.message_thread_id, name="Ticket #1 closed")
    assert tg.topics(-100)[topic.message_thread_id].name == "Ticket #1 closed"


async def test_the_bots_standing_in_a_group_and_webhook_errors_parse(bot, tg):
    tg.add_forum_group(-100777)
    admin = await bot.get_chat_member(-100777, bot.id)
    assert isinstance(admin, telegram.ChatMemberAdministrator) and admin.can_manage_topics
    tg.set_bot_member(-100777, can_manage_topics=False)
    assert (await bot.get_chat_member(-100777, bot.id)).can_manage_topics is False
    tg.set_bot_member(-100777, "restricted")
    restricted = await bot.get_chat_member(-100777, bot.id)
    assert isinstance(restricted, telegram.ChatMemberRestricted)
    assert restricted.can_send_messages is False
    tg.set_bot_member(-100777, "member")
    assert isinstance(await bot.get_chat_member(-100777, bot.id), telegram.ChatMemberMember)
    tg.set_bot_member(-100777, "left")
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.get_chat(-100777)
    tg.set_bot_member(-100777, "kicked")
    assert isinstance(await bot.get_chat_member(-100777, bot.id), telegram.ChatMemberBanned)
    with pytest.raises(Forbidden, match="kicked from the supergroup chat"):
        await bot.get_chat(-100777)
    tg.set_webhook_error("Connection timed out", date=1_700_000_000, url="https://x.example/h")
    info = await bot.get_webhook_info()
    assert info.url == "https://x.example/h" and info.last_error_message == "Connection timed out"
    assert info.last_error_date == dtm.datetime.fromtimestamp(1_700_000_000, dtm.UTC)


async def test_peoples_standing_in_a_group(bot, tg):
    tg.add_group(-100778)
    assert isinstance(await bot.get_chat_member(-100778, 42), telegram.ChatMemberLeft)
    tg.group_text(-100778, "hi", TgUser(id=43))  # writing there makes one a member
    assert isinstance(await bot.get_chat_member(-100778, 43), telegram.ChatMemberMember)
    for status, kind in (
        ("administrator", telegram.ChatMemberAdministrator),
        ("creator", telegram.ChatMemberOwner),
        ("kicked", telegram.ChatMemberBanned),
        ("left", telegram.ChatMemberLeft),
    ):
        tg.set_member(-100778, 42, status)
        assert isinstance(await bot.get_chat_member(-100778, 42), kind), status


async def test_copy_forward_media_drafts_and_commands(bot, tg):
    tg.user_text(CUSTOMER.id, "My parcel is late", user=CUSTOMER)
    source_id = tg.pending_updates[0]["message"]["message_id"]
    copied = await bot.copy_message(-100, CUSTOMER.id, source_id)
    forwarded = await bot.forward_message(-100, CUSTOMER.id, source_id)
    assert copied.message_id + 1 == forwarded.message_id
    assert forwarded.forward_origin.sender_user.id == CUSTOMER.id
    with pytest.raises(BadRequest, match="(?i)message to copy not found"):
        await bot.copy_message(-100, CUSTOMER.id, 424242)
    photo = await bot.send_photo(CUSTOMER.id, b"\x89PNG fake image", caption="Label")
    again = await bot.send_photo(CUSTOMER.id, photo.photo[-1].file_id)
    assert again.photo[-1].file_id == photo.photo[-1].file_id
    assert tg.calls("sendPhoto")[0].files["photo"] == b"\x89PNG fake image"
    assert tg.sent_messages(-100) == ["My parcel is late", "My parcel is late"]
    assert tg.sent_messages(CUSTOMER.id) == ["Label", ""]
    assert await bot.send_message_draft(CUSTOMER.id, 7, "Partial answ")
    assert tg.drafts(CUSTOMER.id)[0]["text"] == "Partial answ"
    with pytest.raises(BadRequest):
        await bot.send_message_draft(-100, 7, "no drafts in groups")
    assert await bot.send_chat_action(CUSTOMER.id, "typing")
    assert tg.chat_actions(CUSTOMER.id)[0]["action"] == "typing"
    assert await bot.set_my_commands([("start", "Start"), ("human", "Talk to a person")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "human"]
    chat = await bot.get_chat(CUSTOMER.id)
    assert chat.first_name == "Ana" and chat.type == "private"


async def test_wait_for_messages_resolves_without_sleeping(bot, tg):
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, lambda: asyncio.ensure_future(bot.send_message(3, "one")))
    loop.call_later(0.1, lambda: asyncio.ensure_future(bot.send_message(3, "two")))
    started = loop.time()
    assert await tg.wait_for_messages(3, 2, timeout=2) == ["one", "two"]
    assert loop.time() - started < 0.5
    with pytest.raises(TimeoutError):
        await tg.wait_for_messages(3, 3, timeout=0.05)


async def test_application_polling_end_to_end(tg):
    from telegram.ext import Application, MessageHandler, filters

    async def echo(update, context):
        await update.message.reply_text(f"echo: {update.message.text}")

    app = Application.builder().token(tg.token).base_url(tg.base_url).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    async with app:
        await app.start()
        await app.updater.start_polling(poll_interval=0, timeout=1)
        tg.user_text(11, "first")
        tg.user_text(11, "second")
        assert await tg.wait_for_messages(11, 2) == ["echo: first", "echo: second"]
        await app.updater.stop()
        await app.stop()
    assert tg.calls("deleteWebhook")


async def test_webhook_delivery_with_secret_and_retries(tg):
    received, statuses = [], [500, 200, 200]

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.headers.get("X-Telegram-Bot-Api-Secret-Token"), await request.json())
        )
        return web.Response(status=statuses[len(received) - 1])

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        tg.deliver_to_webhook(f"http://127.0.0.1:{port}/hook", "s3cret")
        first = tg.user_text(1, "via webhook")
        second = tg.user_text(1, "second")
        await tg.wait_for(lambda: len(tg.webhook_deliveries) == 3)
        assert [d["status"] for d in tg.webhook_deliveries] == [500, 200, 200]
        assert [body["update_id"] for _, body in received] == [first, first, second]
        assert received[0][0] == "s3cret"
        assert received[0][1]["message"]["text"] == "via webhook"
        async with telegram.Bot(tg.token, base_url=tg.base_url) as bot:
            with pytest.raises(Conflict):
                await bot.get_updates()
    finally:
        await tg.stop()
        await runner.cleanup()


# ---------------------------------------------------------------------- standalone processes


async def _spawn(module: str, *args: str) -> tuple[asyncio.subprocess.Process, dict]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--port", "0", *args, cwd=ROOT, stdout=subprocess.PIPE
    )
    line = await asyncio.wait_for(process.stdout.readline(), 10)
    return process, json.loads(line)


async def test_standalone_telegram_with_control_api():
    process, info = await _spawn("tests.fakes.telegram_api")
    try:
        async with httpx.AsyncClient(base_url=info["url"]) as http:
            injected = await http.post("/_control/user_text", json={"chat_id": 9, "text": "hi"})
            update_id = injected.json()["result"]
            async with telegram.Bot(info["token"], base_url=info["base_url"]) as bot:
                updates = await bot.get_updates()
                assert updates[0].update_id == update_id
                await bot.send_message(9, "hello from the bot")
            waited = await http.post("/_control/wait_messages", json={"chat_id": 9, "count": 1})
            assert waited.json()["result"] == ["hello from the bot"]
            calls = (await http.get("/_control/calls", params={"method": "sendMessage"})).json()
            assert calls["result"][0]["params"]["text"] == "hello from the bot"
    finally:
        process.kill()
        await process.wait()


async def test_standalone_llm_with_delay():
    process, info = await _spawn("tests.fakes.llm_api", "--delay", "0.2")
    try:
        async with httpx.AsyncClient(base_url=info["base_url"]) as http:
            started = asyncio.get_running_loop().time()
            response = await http.post("/chat/completions", json=chat_request("hi"))
            assert asyncio.get_running_loop().time() - started >= 0.2
            assert response.json()["choices"][0]["message"]["content"] == "Answer to: hi"
            await http.post(f"{info['url']}/_control/script", json={"content": "scripted"})
            response = await http.post("/chat/completions", json=chat_request())
            assert response.json()["choices"][0]["message"]["content"] == "scripted"
    finally:
        process.kill()
        await process.wait()


# ---------------------------------------------------------------------- LLM


async def test_chat_completion_in_openai_format(client, llm):
    response = await client.post("/chat/completions", json=chat_request("Where is my order?"))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "fake-model" and isinstance(body["created"], int)
    choice = body["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {
        "role": "assistant",
        "content": "Answer to: Where is my order?",
        "refusal": None,
    }
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert llm.last_request["messages"][0]["content"] == "Where is my order?"


async def test_tool_call_without_streaming(client, llm):
    llm.script(Reply.tool_call("lookup_order", {"order_id": "A-17"}))
    body = (await client.post("/chat/completions", json=chat_request())).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "lookup_order"
    assert json.loads(call["function"]["arguments"]) == {"order_id": "A-17"}


async def test_stream_reassembles_text_and_usage(client, llm):
    llm.script(Reply.text("Your parcel left the warehouse today.", chunks=4, keep_alive=True))
    chunks, lines = await read_stream(
        client, chat_request(stream=True, stream_options={"include_usage": True})
    )
    assert lines[-1] == "" or lines[-1] == "data: [DONE]"
    assert "data: [DONE]" in lines and ": keep-alive" in lines
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Your parcel left the warehouse today."
    assert len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]) == 4
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


async def test_stream_reassembles_tool_call_arguments(client, llm):
    llm.script(Reply.tool_call("create_ticket", {"summary": "refund", "priority": 2}, chunks=5))
    chunks, _ = await read_stream(client, chat_request(stream=True))
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for piece in chunk["choices"][0]["delta"].get("tool_calls") or []:
            call = calls.setdefault(piece["index"], {"id": None, "name": "", "arguments": ""})
            call["id"] = piece.get("id") or call["id"]
            call["name"] += piece.get("function", {}).get("name") or ""
            call["arguments"] += piece.get("function", {}).get("arguments") or ""
    assert calls[0]["name"] == "create_ticket" and calls[0]["id"]
    assert json.loads(calls[0]["arguments"]) == {"summary": "refund", "priority": 2}
    argument_chunks = [
        c
        for c in chunks
        if (c["choices"][0]["delta"].get("tool_calls") or [{}])[0]
        .get("function", {})
        .get("arguments")
    ]
    assert len(argument_chunks) == 5
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_error_bodies_and_retry_headers(client, llm):
    llm.script(Reply.rate_limited(retry_after=3, retry_after_ms=2500), Reply.http_error(503))
    response = await client.post("/chat/completions", json=chat_request())
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.headers["retry-after-ms"] == "2500"
    error = response.json()["error"]
    assert (
        error["code"] == "rate_limit_exceeded" and error["type"] == "requests" and error["message"]
    )
    response = await client.post("/chat/completions", json=chat_request())
    assert response.status_code == 503 and response.json()["error"]["type"] == "server_error"
    response = await client.post("/chat/completions", json=chat_request())
    assert response.status_code == 200


async def test_hold_until_proves_concurrency(client, llm):
    llm.hold_until(2)
    first, second = await asyncio.gather(
        client.post("/chat/completions", json=chat_request("one")),
        client.post("/chat/completions", json=chat_request("two")),
    )
    assert first.status_code == second.status_code == 200
    assert llm.max_in_flight == 2 and llm.in_flight == 0


async def test_hold_until_gives_up_on_a_serial_client(client, llm):
    llm.hold_until(2, timeout=0.1)
    response = await client.post("/chat/completions", json=chat_request())
    assert response.status_code == 200 and llm.max_in_flight == 1


async def test_api_key_is_checked():
    async with FakeLLM(api_key="sk-test") as llm, httpx.AsyncClient(base_url=llm.base_url) as http:
        denied = await http.post("/chat/completions", json=chat_request())
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
        allowed = await http.post(
            "/chat/completions", json=chat_request(), headers={"Authorization": "Bearer sk-test"}
        )
        assert allowed.status_code == 200
        assert len(llm.requests) == 1


async def test_broken_answers(client, llm):
    llm.script(Reply.cut(2), Reply.mid_stream_error("overloaded", after=2))
    with pytest.raises(httpx.RemoteProtocolError):
        await read_stream(client, chat_request(stream=True))
    chunks, lines = await read_stream(client, chat_request(stream=True))
    assert chunks[-1] == {"error": {"message": "overloaded", "type": "server_error", "code": 502}}
    assert "data: [DONE]" not in lines
    llm.script(Reply.malformed_json(), Reply.no_choices())
    response = await client.post("/chat/completions", json=chat_request())
    with pytest.raises(json.JSONDecodeError):
        response.json()
    response = await client.post("/chat/completions", json=chat_request())
    assert response.json()["choices"] == []
    llm.script(Reply.hang())
    with pytest.raises(httpx.ReadTimeout):
        await client.post("/chat/completions", json=chat_request(), timeout=0.2)
    bad = await client.post("/chat/completions", content=b"{not json")
    assert bad.status_code == 400 and "error" in bad.json()


async def test_responder_delay_and_chunk_delay(client, llm):
    async def responder(request):
        await asyncio.sleep(0)
        return "Custom: " + request["messages"][-1]["content"]

    llm.responder = responder
    body = (await client.post("/chat/completions", json=chat_request("x"))).json()
    assert body["choices"][0]["message"]["content"] == "Custom: x"
    llm.script(Reply.text("a b", chunks=2, chunk_delay=0.1).after(0.1))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await read_stream(client, chat_request(stream=True))
    assert loop.time() - started >= 0.2


async def test_server_quirks_answer_like_the_real_servers(client, llm):
    llm.check_models = True
    unknown = await client.post("/chat/completions", json={**chat_request(), "model": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    tool = {
        "type": "function",
        "function": {
            "name": "escalate",
            "parameters": {
                "type": "object",
                "properties": {"reason": {"type": "string"}},
                "required": ["reason"],
            },
        },
    }
    named = {"type": "function", "function": {"name": "escalate"}}
    forced = await client.post(
        "/chat/completions", json=chat_request(tools=[tool], tool_choice=named)
    )
    call = forced.json()["choices"][0]["message"]["tool_calls"][0]["function"]
    assert call["name"] == "escalate" and json.loads(call["arguments"]) == {
        "reason": "Where is my order?"
    }
    llm.tool_support = "vllm_no_auto"
    auto = await client.post("/chat/completions", json=chat_request(tools=[tool]))
    assert (
        auto.status_code == 400 and "--enable-auto-tool-choice" in auto.json()["error"]["message"]
    )
    forced = await client.post(
        "/chat/completions", json=chat_request(tools=[tool], tool_choice=named)
    )
    assert forced.status_code == 200  # vLLM answers a named tool by guided decoding
    llm.tool_support = "llamacpp_no_jinja"
    refused = await client.post("/chat/completions", json=chat_request(tools=[tool]))
    assert (
        refused.status_code == 500
        and refused.json()["error"]["message"] == "tools param requires --jinja flag"
    )
    llm.server, llm.context_window = "llamacpp", 4096
    props = await client.get(f"{llm.url}/props")
    assert props.json()["default_generation_settings"]["n_ctx"] == 4096
    llm.server = "vllm"
    assert (await client.get("/models")).json()["data"][0]["max_model_len"] == 4096
    assert (await client.get(f"{llm.url}/props")).status_code == 404


async def test_embeddings_and_models(client, llm):
    response = await client.post(
        "/embeddings",
        json={"model": "fake-embedding", "input": ["refund policy", "refunds", "weather"]},
    )
    body = response.json()
    vectors = [d["embedding"] for d in body["data"]]
    assert [d["index"] for d in body["data"]] == [0, 1, 2] and len(vectors[0]) == 256
    assert all(math.isclose(sum(v * v for v in vec), 1.0) for vec in vectors)

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])
    assert vectors[0] == embed("refund policy")
    assert body["usage"]["prompt_tokens"] > 0
    encoded = await client.post(
        "/embeddings", json={"model": "e", "input": "refunds", "encoding_format": "base64"}
    )
    raw = base64.b64decode(encoded.json()["data"][0]["embedding"])
    assert list(struct.unpack("<256f", raw)) == pytest.approx(vectors[1], abs=1e-6)
    models = (await client.get("/models")).json()
    assert models["object"] == "list" and models["data"][0]["id"] == "fake-model"
    assert len(llm.embedding_requests) == 2


async def test_image_parts_are_checked_and_recorded(client, llm):
    picture = base64.b64encode(JPEG).decode()
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{picture}"}},
        ],
    }
    ok = await client.post("/chat/completions", json={"model": "m", "messages": [message]})
    assert ok.status_code == 200
    assert [(i["mime"], i["data"]) for i in llm.images] == [("image/jpeg", JPEG)]
    fake = base64.b64encode(b"<html>").decode()
    message["content"][1]["image_url"]["url"] = f"data:image/jpeg;base64,{fake}"
    refused = await client.post("/chat/completions", json={"model": "m", "messages": [message]})
    assert refused.status_code == 400
    assert "unsupported image" in refused.json()["error"]["message"]
    assert len(llm.images) == 1


async def test_transcriptions_take_multipart_and_fail_as_scripted(client, llm):
    async def transcribe(name: str = "voice.ogg", data: bytes = b"OggS hello there"):
        return await client.post(
            "/audio/transcriptions",
            data={"model": "whisper-1", "language": "en"},
            files={"file": (name, data, "audio/ogg")},
        )

    heard = await transcribe()
    assert heard.json() == {"text": "hello there"}
    assert llm.transcription_requests[0]["language"] == "en"
    assert (await transcribe("notes.wma")).status_code == 400
    llm.script_transcription(Reply.http_error(413, "too big"), "scripted words")
    assert (await transcribe()).status_code == 413
    assert (await transcribe()).json() == {"text": "scripted words"}
    missing = await client.post("/audio/transcriptions", data={"model": "whisper-1"})
    assert missing.status_code == 400
