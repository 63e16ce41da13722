"""The doctor's Telegram checks: the token, the staff chat and the bot's rights, the webhook.

Raw Bot API calls over httpx rather than python-telegram-bot, so each answer is read
as Telegram sent it (``description``, webhook error fields) and nothing is retried.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.commands.doctor_report import Finding, ok, problem, warning
from bot.settings import Settings

# Telegram only delivers webhooks to these ports.
WEBHOOK_PORTS = (443, 80, 88, 8443)
PENDING_WARNING = 100  # updates waiting at Telegram before it looks like nobody takes them
RECENT_ERROR_SECONDS = 24 * 3600


class BotApiError(Exception):
    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status = status
        self.description = description


class BotApi:
    """``{TELEGRAM_API_BASE_URL}{token}/{method}``, built the way python-telegram-bot builds it."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, token: str):
        self._http = http
        base = base_url.format(token=token) if "{token}" in base_url else base_url + token
        self._base = base.rstrip("/")

    async def call(self, method: str, **params: Any) -> Any:
        try:
            response = await self._http.post(f"{self._base}/{method}", json=params)
        except httpx.HTTPError as error:
            raise BotApiError(0, f"cannot reach the Bot API ({type(error).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and body.get("ok"):
            return body.get("result")
        description = body.get("description") or f"HTTP {response.status_code}"
        raise BotApiError(response.status_code, str(description))


async def check_telegram(settings: Settings, http: httpx.AsyncClient) -> list[Finding]:
    env = settings.env
    if not env.telegram_bot_token:
        return [
            problem(
                "bot token",
                "TELEGRAM_BOT_TOKEN is not set; only `python main.py chat` can work",
                "create a bot with @BotFather and set TELEGRAM_BOT_TOKEN to its token",
            )
        ]
    api = BotApi(http, env.telegram_api_base_url, env.telegram_bot_token)
    try:
        me = await api.call("getMe")
    except BotApiError as error:
        return [_token_problem(error, env.telegram_api_base_url)]
    findings = [ok("bot token", f"accepted: @{me.get('username')} (id {me.get('id')})")]
    findings += await _staff_chat(api, me, settings.telegram.staff_chat_id)
    findings += await _webhook(api, env.webhook_url)
    return findings


def _token_problem(error: BotApiError, base_url: str) -> Finding:
    if error.status == 401:
        return problem(
            "bot token",
            "Telegram rejected it (401 Unauthorized)",
            "copy the token again from @BotFather (/mybots > API Token) into TELEGRAM_BOT_TOKEN",
        )
    if error.status == 0:
        return problem(
            "bot token",
            f"not checked: {error.description} at {base_url}",
            "check the network and proxy, or TELEGRAM_API_BASE_URL",
        )
    hint = "a token looks like 123456789:AA..., and TELEGRAM_API_BASE_URL ends in /bot"
    return problem("bot token", f"getMe failed: {error.description}", hint)


async def _staff_chat(api: BotApi, me: dict, chat_id: int | None) -> list[Finding]:
    if chat_id is None:
        return [
            warning(
                "staff chat",
                "STAFF_CHAT_ID is not set: tickets are stored, but no staff group hears of them",
                "add the bot to your staff supergroup and set STAFF_CHAT_ID to its id (-100...)",
            )
        ]
    findings: list[Finding] = []
    if chat_id > 0:
        findings.append(
            warning(
                "staff chat id",
                f"{chat_id} is positive, but group ids are negative",
                f"a supergroup's id starts with -100: try STAFF_CHAT_ID=-100{chat_id}",
            )
        )
    try:
        chat = await api.call("getChat", chat_id=chat_id)
    except BotApiError as error:
        findings.append(
            problem(
                "staff chat",
                f"{chat_id}: Telegram says {error.description!r}",
                f"add @{me.get('username')} to the staff group and check STAFF_CHAT_ID (web "
                "Telegram shows a supergroup's id in the address bar: #-100...)",
            )
        )
        return findings
    findings.append(_chat_kind(chat_id, chat))
    if chat.get("type") in ("group", "supergroup"):
        findings.append(await _bot_rights(api, me, chat_id, bool(chat.get("is_forum"))))
    return findings


def _chat_kind(chat_id: int, chat: dict) -> Finding:
    kind, title = chat.get("type"), chat.get("title")
    if kind == "supergroup":
        if chat.get("is_forum"):
            return ok("staff chat", f'{chat_id} is the supergroup "{title}" with topics')
        return ok(
            "staff chat",
            f'{chat_id} is the supergroup "{title}", topics off: tickets arrive as cards '
            "(turn topics on in the group's settings for one topic per ticket)",
        )
    if kind == "group":
        return warning(
            "staff chat",
            f'{chat_id} is the basic group "{title}": Telegram gives it a new id when it '
            "becomes a supergroup (turning topics on does that)",
            "turn topics on (or make the group public) now, then set STAFF_CHAT_ID to the new "
            "-100... id",
        )
    return problem(
        "staff chat",
        f"{chat_id} is a {kind} chat, not a group",
        "create a supergroup for staff, add the bot and set STAFF_CHAT_ID to its id (-100...)",
    )


async def _bot_rights(api: BotApi, me: dict, chat_id: int, forum: bool) -> Finding:
    name = f"@{me.get('username')}"
    try:
        member = await api.call("getChatMember", chat_id=chat_id, user_id=me.get("id"))
    except BotApiError as error:
        return problem("bot in staff chat", f"getChatMember failed: {error.description}")
    status = member.get("status")
    if status in ("left", "kicked"):
        fix = f"add {name} to the group" + (" (unban it first)" if status == "kicked" else "")
        return problem("bot in staff chat", f"{name} is not in the group ({status})", fix)
    if status == "restricted" and not member.get("can_send_messages", True):
        return problem(
            "bot in staff chat",
            f"{name} may not send messages there",
            "lift the restriction in the group's member settings",
        )
    topics_fix = (
        f'in the group: Administrators > {name} > turn on "Manage topics" (or promote it '
        "with that right)"
    )
    if status == "administrator":
        if forum and not member.get("can_manage_topics"):
            return problem(
                "bot in staff chat",
                f'{name} is an admin without the "Manage topics" right: it cannot open a '
                "topic per ticket",
                topics_fix,
            )
        extra = ' with "Manage topics"' if forum else ""
        return ok("bot in staff chat", f"{name} is an admin{extra}")
    if forum:
        return problem(
            "bot in staff chat",
            f"{name} is a {status}, not an admin: it cannot open a topic per ticket",
            f'make {name} an admin with the "Manage topics" right',
        )
    return ok("bot in staff chat", f"{name} is a {status}: staff reply to its ticket cards")


async def _webhook(api: BotApi, webhook_url: str | None) -> list[Finding]:
    try:
        info = await api.call("getWebhookInfo")
    except BotApiError as error:
        return [problem("webhook", f"getWebhookInfo failed: {error.description}")]
    findings = [_webhook_url(info.get("url") or "", webhook_url)]
    if webhook_url:
        port = urlsplit(webhook_url).port or 443
        if port not in WEBHOOK_PORTS:
            findings.append(
                problem(
                    "webhook port",
                    f"WEBHOOK_URL uses port {port}; Telegram only posts to 443, 80, 88 or 8443",
                    "serve the webhook behind a reverse proxy on one of those ports",
                )
            )
    if info.get("last_error_date"):
        findings.append(_webhook_error(info))
    pending = int(info.get("pending_update_count") or 0)
    if pending > PENDING_WARNING:
        findings.append(
            warning(
                "pending updates",
                f"{pending} updates are waiting at Telegram",
                "start the bot, or check its log for why it does not take them",
            )
        )
    return findings


def _webhook_url(registered: str, configured: str | None) -> Finding:
    if configured:
        if not registered:
            return warning(
                "webhook",
                "WEBHOOK_URL is set, but Telegram has no webhook registered",
                "`run` registers it at start; if the bot is running, read its log for setWebhook",
            )
        if registered != configured:
            return warning(
                "webhook",
                f"Telegram posts to {registered}, not to WEBHOOK_URL {configured}",
                "another instance may have registered it; stop it and restart this bot",
            )
        return ok("webhook", f"Telegram posts to {registered}")
    if registered:
        return warning(
            "webhook",
            f"Telegram posts to {registered}, but WEBHOOK_URL is not set",
            "set WEBHOOK_URL to keep it; otherwise `run` deletes it and polls",
        )
    return ok("webhook", "none registered: the bot polls for updates")


def _webhook_error(info: dict) -> Finding:
    message = str(info.get("last_error_message") or "unknown error")
    age = max(0, int(time.time()) - int(info["last_error_date"]))
    detail = f"last delivery error {_ago(age)}: {message}"
    fix = _webhook_fix(message)
    if age > RECENT_ERROR_SECONDS:
        return warning("webhook delivery", detail, fix)
    return problem("webhook delivery", detail, fix)


def _webhook_fix(message: str) -> str:
    lower = message.lower()
    if "ssl" in lower or "certificate" in lower:
        return "the host in WEBHOOK_URL needs a valid HTTPS certificate (from a public CA)"
    if "401" in lower or "403" in lower:
        return "the bot refused Telegram's secret token: restart it so it registers WEBHOOK_SECRET"
    if any(code in lower for code in ("500", "502", "503", "504")):
        return "the reverse proxy cannot reach the bot: is it running, is HTTP_PORT forwarded?"
    if "resolve" in lower or "refused" in lower or "timed out" in lower or "timeout" in lower:
        return "Telegram cannot reach WEBHOOK_URL: check DNS, the firewall and the port"
    return "make sure WEBHOOK_URL is reachable from the internet over HTTPS and answers 200"


def _ago(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"
