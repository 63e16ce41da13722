"""/console in a private chat: a one-time link to the web console for admins and staff.

Admins are ADMIN_USER_IDS; staff are the members of the staff group, asked of
Telegram with getChatMember. Anyone else's /console is an ordinary customer
message, so the console's existence is not revealed to customers.
"""

from __future__ import annotations

import logging
import time

from telegram import Bot, LinkPreviewOptions, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.console_web.auth import LINK_MINUTES, ConsoleAccess
from bot.settings import Settings
from bot.telegram import customer
from bot.telegram.bot_data import services_of
from bot.telegram.sender import gone_if_forbidden

log = logging.getLogger(__name__)

MEMBER_STATUSES = ("creator", "owner", "administrator", "member")
# How long a getChatMember answer is trusted by the web pages, which ask on every request.
STAFF_CACHE_SECONDS = 60.0


class ConsoleRoles:
    """What a user is for the console now: "admin", "staff" or None."""

    def __init__(self, bot: Bot, settings: Settings):
        self.bot = bot
        self.settings = settings
        self.cache_seconds = STAFF_CACHE_SECONDS
        self._staff: dict[int, tuple[float, bool]] = {}

    async def __call__(self, user_id: int) -> str | None:
        if user_id in self.settings.telegram.admin_user_ids:
            return "admin"
        return "staff" if await self.is_staff(user_id) else None

    async def is_staff(self, user_id: int, fresh: bool = False) -> bool:
        staff_chat = self.settings.telegram.staff_chat_id
        if staff_chat is None:
            return False
        known = self._staff.get(user_id)
        if not fresh and known is not None and time.monotonic() - known[0] < self.cache_seconds:
            return known[1]
        try:
            member = await self.bot.get_chat_member(staff_chat, user_id)
        except TelegramError as error:
            log.warning("console: could not ask Telegram about user %s: %s", user_id, error)
            return False  # not known to be staff: no access, asked again next time
        status = str(member.status)
        yes = status in MEMBER_STATUSES or (
            status == "restricted" and bool(getattr(member, "is_member", False))
        )
        self._staff[user_id] = (time.monotonic(), yes)
        return yes


async def console(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/console: a login link; /console logout: end this user's console sessions."""
    user = update.effective_user
    roles: ConsoleRoles | None = context.application.bot_data.get("console_roles")
    access: ConsoleAccess | None = context.application.bot_data.get("console_access")
    if user is None or roles is None or access is None:
        await customer.message(update, context)
        return
    if user.id in roles.settings.telegram.admin_user_ids:
        role = "admin"
    elif await roles.is_staff(user.id, fresh=True):
        role = "staff"
    else:
        await customer.message(update, context)  # a customer: the normal flow, nothing special
        return
    persona = services_of(context).knowledge.current.persona
    args = context.args or []
    if args and args[0].lower() == "logout":
        count = await access.revoke_user(user.id)
        log.info("console: user %s logged out of %d session(s)", user.id, count)
        text = persona.staff_message("console_logged_out", count=count)
    else:
        url = await access.issue_link(user.id, role)
        log.info("console: link issued to user %s (%s)", user.id, role)
        text = persona.staff_message("console_link", url=url, minutes=LINK_MINUTES)
    chat_id = update.effective_chat.id
    # No link preview: a preview fetch by Telegram would use up the one-time link.
    await gone_if_forbidden(
        lambda: context.bot.send_message(
            chat_id, text, link_preview_options=LinkPreviewOptions(is_disabled=True)
        )
    )
