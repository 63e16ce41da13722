"""The web console over real HTTP: one-time links from Telegram, sessions, roles, every page.

The bot runs against the Bot API and LLM doubles and serves its HTTP server on
loopback; links come out of /console messages exactly as a person gets them,
and the pages are fetched with a cookie jar like a browser's.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import yaml

from bot.console_web.auth import COOKIE_NAME
from bot.privacy import purge_older_than
from bot.telegram.app import TelegramBot
from tests.fakes import Reply, TgUser
from tests.helpers import (
    ALICE,
    BOB,
    CONSOLE_ADMIN,
    CONSOLE_AGENT,
    CONSOLE_STAFF,
    ask_for_link,
    console_traffic,
    free_port,
    link_in,
    values,
)


def local(bot: TelegramBot, url: str) -> str:
    """The same path and query on the bot's own port (the public base may be a proxy)."""
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    return f"http://127.0.0.1:{bot.settings.env.http_port}{parts.path}{query}"


def browser() -> aiohttp.ClientSession:
    # unsafe=True: keep cookies for an IP address host (127.0.0.1), as browsers do.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def log_in(bot, fake, user: TgUser) -> tuple[aiohttp.ClientSession, str]:
    """A browser session logged in through the link the bot sent ``user``; and where it landed."""
    session = browser()
    url = link_in(await ask_for_link(fake, user))
    async with session.get(local(bot, url)) as response:
        assert response.status == 200, await response.text()
        landed = str(response.url)
    assert "token" not in landed  # redirected away from the link
    return session, urlsplit(landed).path


async def fetch(session, bot, path: str) -> tuple[int, str]:
    async with session.get(local(bot, path), allow_redirects=False) as response:
        return response.status, await response.text()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_admin_gets_a_one_time_link_and_sees_every_page(fake_telegram, console_bot, caplog):
    caplog.set_level(logging.INFO)
    bot = await console_bot()
    await console_traffic(fake_telegram)
    text = await ask_for_link(fake_telegram, CONSOLE_ADMIN)
    assert "valid 10 minutes" in text
    call = fake_telegram.calls("sendMessage")[-1]
    url = link_in(text)
    # Without CONSOLE_URL or WEBHOOK_URL the links point at the bot's own address.
    assert url.startswith(f"http://127.0.0.1:{bot.settings.env.http_port}/console/login?token=")
    # No preview: Telegram fetching the page for one would use the link up.
    assert call.params["chat_id"] == CONSOLE_ADMIN.id
    assert call.params["link_preview_options"]["is_disabled"] is True
    token = url.split("token=")[1]
    stored = values(Path(bot.settings.storage.database_path), "SELECT * FROM console_links")
    assert len(stored) == 1 and token not in str(stored)  # only its hash is kept

    async with browser() as session:
        async with session.get(local(bot, url), allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/console"
            cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=43200" in cookie
        assert "Secure" not in cookie  # plain http base: a Secure cookie would never come back

        status, html = await fetch(session, bot, "/console?days=7")
        assert status == 200
        assert "Overview, last 7 days" in html
        assert html.count("<svg") >= 9
        assert "user_request" in html  # the escalation reason, as a bar label
        assert 'name="viewport"' in html

        status, html = await fetch(session, bot, "/console/tickets")
        assert status == 200 and 'href="/console/tickets/1"' in html and "Alice" in html

        status, html = await fetch(session, bot, "/console/tickets/1")
        assert status == 200
        assert "How long does a refund take for order 4711?" in html
        version = bot.services.knowledge.current.version
        assert f"knowledge {version}" in html and "via llm" in html
        assert re.search(r"FAQ [\w-]+", html), "the FAQ entries an answer used are shown"

        status, html = await fetch(session, bot, "/console/gaps")
        assert status == 200 and "Knowledge gaps" in html
        assert "/console/gaps/draft.yaml" in html and "/console/gaps/eval.yaml" in html
        async with session.get(local(bot, "/console/gaps/draft.yaml")) as response:
            assert response.status == 200
            assert "attachment" in response.headers["Content-Disposition"]
            assert "faq" in await response.text()
        async with session.get(local(bot, "/console/gaps/eval.yaml")) as response:
            assert response.status == 200

    # The link worked once: a second use is refused.
    async with browser() as session:
        status, html = await fetch(session, bot, url)
        assert status == 403 and "not valid" in html
    logged = caplog.text
    assert token not in logged and "4711" not in logged and "Alice" not in logged


async def test_staff_see_tickets_and_transcripts_only(fake_telegram, console_bot):
    bot = await console_bot()
    await console_traffic(fake_telegram)
    session, landed = await log_in(bot, fake_telegram, CONSOLE_AGENT)
    async with session:
        assert landed == "/console/tickets"
        assert (await fetch(session, bot, "/console/tickets"))[0] == 200
        status, html = await fetch(session, bot, "/console/tickets/1")
        assert status == 200 and "order 4711" in html
        for path in ("/console", "/console?days=90", "/console/gaps", "/console/gaps/draft.yaml"):
            status, html = await fetch(session, bot, path)
            assert status == 403, path
            assert "order 4711" not in html
        # The role is asked again on every request: out of the group, out of the console.
        bot.app.bot_data["console_roles"].cache_seconds = 0
        fake_telegram.set_member(CONSOLE_STAFF, CONSOLE_AGENT.id, "left")
        assert (await fetch(session, bot, "/console/tickets"))[0] == 403


async def test_a_customer_asking_for_the_console_gets_the_normal_flow(fake_telegram, console_bot):
    bot = await console_bot()
    text = await ask_for_link(fake_telegram, BOB)
    assert "/console/" not in text and "token" not in text and "http" not in text
    db = Path(bot.settings.storage.database_path)
    assert values(db, "SELECT COUNT(*) FROM console_links") == [(0,)]
    # It reached the core like any message the bot does not know as a command.
    assert values(db, "SELECT text FROM messages WHERE chat_id = ? AND role = 'customer'", BOB.id)
    # In the staff group /console does nothing either.
    fake_telegram.group_text(CONSOLE_STAFF, "/console", CONSOLE_ADMIN)
    fake_telegram.user_text(BOB.id, "still there?", BOB)
    await fake_telegram.wait_for_messages(BOB.id, 2, timeout=30)
    assert not [m for m in fake_telegram.sent_messages(CONSOLE_STAFF) if "console" in m]


async def test_expired_wrong_and_forged_credentials_are_refused(fake_telegram, console_bot):
    bot = await console_bot()
    access = bot.app.bot_data["console_access"]
    old = await access.issue_link(
        CONSOLE_ADMIN.id, "admin", now=datetime.now(UTC) - timedelta(minutes=11)
    )
    async with browser() as session:
        assert (await fetch(session, bot, old))[0] == 403  # expired
        assert (await fetch(session, bot, "/console/login?token=guessed"))[0] == 403
        assert (await fetch(session, bot, "/console/login"))[0] == 403
        status, html = await fetch(session, bot, "/console")
        assert status == 403 and "send /console to the bot" in html
    forged = {COOKIE_NAME: "x" * 43}
    async with aiohttp.ClientSession(cookies=forged) as session:
        for path in ("/console", "/console/tickets", "/console/tickets/1", "/console/gaps"):
            assert (await fetch(session, bot, path))[0] == 403, path
    # A link that was valid until now, for a user who is no longer an admin nor staff.
    link = await access.issue_link(BOB.id, "admin")
    async with browser() as session:
        await fetch(session, bot, link)
        assert (await fetch(session, bot, "/console"))[0] == 403


async def test_logout_needs_the_csrf_token_and_revokes_the_session(fake_telegram, console_bot):
    bot = await console_bot()
    session, _ = await log_in(bot, fake_telegram, CONSOLE_ADMIN)
    async with session:
        status, html = await fetch(session, bot, "/console")
        token = csrf_of(html)
        for form in ({}, {"csrf": "wrong"}):
            async with session.post(local(bot, "/console/logout"), data=form) as response:
                assert response.status == 403
        assert (await fetch(session, bot, "/console"))[0] == 200  # still logged in
        # Search goes by POST and needs the token as well.
        async with session.post(local(bot, "/console/tickets"), data={"q": "x"}) as response:
            assert response.status == 403
        async with session.post(local(bot, "/console/logout"), data={"csrf": token}) as response:
            assert response.status == 200
        assert (await fetch(session, bot, "/console"))[0] == 403


async def test_console_logout_in_telegram_ends_every_session_of_that_user(
    fake_telegram, console_bot
):
    bot = await console_bot()
    first, _ = await log_in(bot, fake_telegram, CONSOLE_ADMIN)
    second, _ = await log_in(bot, fake_telegram, CONSOLE_ADMIN)
    staff, _ = await log_in(bot, fake_telegram, CONSOLE_AGENT)
    async with first, second, staff:
        assert (await fetch(first, bot, "/console"))[0] == 200
        text = await ask_for_link(fake_telegram, CONSOLE_ADMIN, "/console logout")
        assert "2 session(s)" in text
        assert (await fetch(first, bot, "/console"))[0] == 403
        assert (await fetch(second, bot, "/console/tickets"))[0] == 403
        assert (await fetch(staff, bot, "/console/tickets"))[0] == 200  # others keep theirs


async def test_filters_and_search(fake_telegram, console_bot):
    bot = await console_bot()
    await console_traffic(fake_telegram)
    fake_telegram.user_text(BOB.id, "/human", BOB)
    await fake_telegram.wait_for_messages(BOB.id, 2, timeout=30)
    session, _ = await log_in(bot, fake_telegram, CONSOLE_ADMIN)
    async with session:
        status, html = await fetch(session, bot, "/console/tickets")
        csrf = csrf_of(html)
        assert "#1" in html and "#2" in html

        async def post(**form: str) -> str:
            async with session.post(
                local(bot, "/console/tickets"), data={"csrf": csrf, **form}
            ) as response:
                assert response.status == 200
                return await response.text()

        found = await post(q="order 4711")
        assert 'href="/console/tickets/1"' in found and 'href="/console/tickets/2"' not in found
        found = await post(language="de")
        assert 'href="/console/tickets/1"' in found and 'href="/console/tickets/2"' not in found
        found = await post(status="resolved")
        assert "No tickets match" in found
        today = datetime.now(UTC).date()
        found = await post(since=(today + timedelta(days=1)).isoformat())
        assert "No tickets match" in found
        found = await post(until=today.isoformat(), reason="user_request")
        assert 'href="/console/tickets/1"' in found and 'href="/console/tickets/2"' in found
        # GET filters without text work as links too; a search term in the URL is ignored.
        status, html = await fetch(session, bot, "/console/tickets?language=de&q=nothing-like-it")
        assert 'href="/console/tickets/1"' in html and 'href="/console/tickets/2"' not in html


async def test_forget_and_retention_remove_text_from_the_console(fake_telegram, console_bot):
    bot = await console_bot()
    await console_traffic(fake_telegram)
    fake_telegram.user_text(BOB.id, "/human", BOB)
    await fake_telegram.wait_for_messages(BOB.id, 2, timeout=30)
    session, _ = await log_in(bot, fake_telegram, CONSOLE_ADMIN)
    async with session:
        assert "order 4711" in (await fetch(session, bot, "/console/tickets/1"))[1]
        before = len(fake_telegram.bot_messages(ALICE.id))
        fake_telegram.user_text(ALICE.id, "/forget", ALICE)
        await fake_telegram.wait_for_messages(ALICE.id, before + 1, timeout=30)
        confirm = fake_telegram.bot_messages(ALICE.id)[-1]
        fake_telegram.callback_query(ALICE.id, ALICE, "forget:yes", confirm["message_id"])
        await fake_telegram.wait_for_messages(ALICE.id, before + 2, timeout=30)
        status, html = await fetch(session, bot, "/console/tickets/1")
        assert status == 200 and "4711" not in html and "Alice" not in html
        status, html = await fetch(session, bot, "/console/tickets")
        assert "4711" not in html and "Alice" not in html

        assert "Do you ship abroad?" in (await fetch(session, bot, "/console/tickets/2"))[1]
        await purge_older_than(bot.services.db, 1, now=datetime.now(UTC) + timedelta(days=2))
        status, html = await fetch(session, bot, "/console/tickets/2")
        assert "Do you ship abroad?" not in html and "(text removed)" in html


async def test_https_base_makes_the_cookie_secure(fake_telegram, console_bot):
    bot = await console_bot(CONSOLE_URL="https://support.example/")
    url = link_in(await ask_for_link(fake_telegram, CONSOLE_ADMIN))
    assert url.startswith("https://support.example/console/login?token=")
    async with (
        browser() as session,
        session.get(local(bot, url), allow_redirects=False) as response,
    ):
        assert response.status == 303
        assert "Secure" in response.headers["Set-Cookie"]


def test_the_webhook_origin_is_the_default_base():
    from bot.console_web.auth import console_base_url
    from bot.settings import Environment

    base, note = console_base_url(Environment(webhook_url="https://bot.example:8443/tg/hook"))
    assert (base, note) == ("https://bot.example:8443", None)
    base, note = console_base_url(
        Environment(webhook_url="https://bot.example/tg", console_url="https://c.example/")
    )
    assert base == "https://c.example"
    base, note = console_base_url(Environment(http_port=9000))
    assert base == "http://localhost:9000" and "CONSOLE_URL" in note


async def test_gaps_page_shows_what_the_bot_could_not_answer(fake_telegram, fake_llm, console_bot):
    bot = await console_bot()
    carol = TgUser(id=3003, first_name="Carol")
    fake_llm.script(Reply.http_error(400, "bad request"))
    fake_telegram.user_text(carol.id, "Can I pay with seashells at the store?", carol)
    await fake_telegram.wait_for_messages(carol.id, 1, timeout=30)
    staff, _ = await log_in(bot, fake_telegram, CONSOLE_AGENT)
    admin, _ = await log_in(bot, fake_telegram, CONSOLE_ADMIN)
    async with staff, admin:
        assert (await fetch(staff, bot, "/console/gaps"))[0] == 403
        status, html = await fetch(admin, bot, "/console/gaps?days=7")
        assert status == 200
        assert "Can I pay with seashells at the store?" in html and "llm_error" in html
        assert "1 messages from 1 customers" in html
        status, draft = await fetch(admin, bot, "/console/gaps/draft.yaml?days=7")
        assert status == 200 and "seashells" in draft
        status, cases = await fetch(admin, bot, "/console/gaps/eval.yaml?days=7")
        assert status == 200 and isinstance(yaml.safe_load(cases)["cases"], list)


async def test_a_session_ends_after_its_time(fake_telegram, console_bot):
    bot = await console_bot()
    session, _ = await log_in(bot, fake_telegram, CONSOLE_ADMIN)
    async with session:
        assert (await fetch(session, bot, "/console"))[0] == 200
        past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat(timespec="milliseconds")
        await bot.services.db.execute("UPDATE console_sessions SET expires_at = ?", (past,))
        status, html = await fetch(session, bot, "/console")
        assert status == 403 and "send /console to the bot" in html


async def test_webhook_mode_serves_the_console_behind_the_same_proxy(
    fake_telegram, fake_llm, make_settings, start_bot
):
    """Links take the origin of WEBHOOK_URL; the proxy forwards /console to the same server."""
    settings = make_settings(
        fake_telegram,
        fake_llm,
        ADMIN_USER_IDS=str(CONSOLE_ADMIN.id),
        WEBHOOK_URL="https://bot.example.test/telegram/hook",
        WEBHOOK_SECRET="webhook-secret_0123456789",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(free_port()),
    )
    bot = await start_bot(settings)
    port = settings.env.http_port
    fake_telegram.deliver_to_webhook(f"http://127.0.0.1:{port}/telegram/hook")
    url = link_in(await ask_for_link(fake_telegram, CONSOLE_ADMIN))
    assert url.startswith("https://bot.example.test/console/login?token=")
    async with browser() as session:
        async with session.get(local(bot, url), allow_redirects=False) as response:
            assert response.status == 303
            cookie = response.headers["Set-Cookie"]
        assert "Secure" in cookie
        # The proxy speaks HTTPS to the browser; here the cookie goes back by hand.
        value = cookie.split(";")[0].split("=", 1)[1]
        async with aiohttp.ClientSession(cookies={COOKIE_NAME: value}) as proxied:
            status, html = await fetch(proxied, bot, "/console")
            assert status == 200 and "<svg" in html
