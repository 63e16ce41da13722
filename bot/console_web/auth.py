"""Who may open the web console: one-time links sent in Telegram, then a session cookie.

There are no passwords. An admin or staff member sends /console to the bot in a
private chat and gets a link with a random token, valid ``LINK_MINUTES`` and
good for one use. Opening it trades the token for a session cookie. Only
SHA-256 hashes of tokens and session ids are stored, so a copy of the database
(a backup, a support dump) lets nobody in.

The role a session was opened with is a ceiling, not a permanent grant: every
request asks ``RoleCheck`` again, so an admin removed from ADMIN_USER_IDS or a
member who left the staff group loses access at once (staff membership within
the check's short cache).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from bot.settings import Environment
from bot.store.db import Database

log = logging.getLogger(__name__)

LINK_MINUTES = 10
SESSION_HOURS = 12
COOKIE_NAME = "console_session"
ROLES = ("staff", "admin")  # in rising order of what they may see

# user id -> "admin", "staff" or None, asked on every request.
RoleCheck = Callable[[int], Awaitable[str | None]]


def console_base_url(env: Environment) -> tuple[str, str | None]:
    """The public origin of console links, and a note for the log when it is only a guess.

    CONSOLE_URL wins; else the origin of WEBHOOK_URL (the TLS proxy that already
    reaches the bot); else the bot's own listening address, which only works on
    the same network.
    """
    if env.console_url:
        return env.console_url.rstrip("/"), None
    if env.webhook_url:
        parts = urlsplit(env.webhook_url)
        return f"{parts.scheme}://{parts.netloc}", None
    host = "localhost" if env.http_host in ("0.0.0.0", "::", "") else env.http_host
    return (
        f"http://{host}:{env.http_port}",
        "console links point at the bot's own address; set CONSOLE_URL to the public "
        "HTTPS address of the bot's HTTP server",
    )


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def allows(role: str, needed: str) -> bool:
    """Admins may do what staff may do, and more."""
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class ConsoleSession:
    user_id: int
    role: str
    csrf_token: str
    expires_at: str


class ConsoleAccess:
    """Issues links, opens, checks and ends sessions; the web pages ask it on every request."""

    def __init__(self, db: Database, base_url: str):
        self.db = db
        self.base_url = base_url.rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    async def issue_link(self, user_id: int, role: str, now: datetime | None = None) -> str:
        """A one-time login link for ``user_id``; its token is stored only as a hash."""
        if role not in ROLES:
            raise ValueError(f"not a console role: {role}")
        now = now or datetime.now(UTC)
        token = secrets.token_urlsafe(32)
        await self.db.execute(
            "INSERT INTO console_links (token_hash, user_id, role, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                _digest(token),
                user_id,
                role,
                _stamp(now),
                _stamp(now + timedelta(minutes=LINK_MINUTES)),
            ),
        )
        return f"{self.base_url}/console/login?token={token}"

    async def redeem(self, token: str) -> tuple[str, ConsoleSession] | None:
        """Trade a link's token for a new session (cookie value, session); None if not valid.

        Marking the link used and checking it is one UPDATE, so two requests racing
        with the same link cannot both get a session.
        """
        if not token or len(token) > 200:
            return None
        now = datetime.now(UTC)
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE console_links SET used_at = ? WHERE token_hash = ? "
                "AND used_at IS NULL AND expires_at > ? RETURNING user_id, role",
                (_stamp(now), _digest(token), _stamp(now)),
            )
            row = await cursor.fetchone()
            await cursor.close()
            if row is None:
                return None
            user_id, role = int(row[0]), str(row[1])
            cookie = secrets.token_urlsafe(32)
            session = ConsoleSession(
                user_id,
                role,
                secrets.token_urlsafe(24),
                _stamp(now + timedelta(hours=SESSION_HOURS)),
            )
            await conn.execute(
                "INSERT INTO console_sessions (session_hash, user_id, role, csrf_token, "
                "created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    _digest(cookie),
                    user_id,
                    role,
                    session.csrf_token,
                    _stamp(now),
                    session.expires_at,
                ),
            )
        log.info("console: user %s opened a %s session", user_id, role)
        return cookie, session

    async def session(self, cookie: str | None) -> ConsoleSession | None:
        """The live session behind a cookie value, or None (unknown, expired or revoked)."""
        if not cookie or len(cookie) > 200:
            return None
        row = await self.db.fetchone(
            "SELECT user_id, role, csrf_token, expires_at FROM console_sessions "
            "WHERE session_hash = ? AND revoked_at IS NULL AND expires_at > ?",
            (_digest(cookie), _stamp(datetime.now(UTC))),
        )
        if row is None:
            return None
        return ConsoleSession(
            int(row["user_id"]), str(row["role"]), str(row["csrf_token"]), str(row["expires_at"])
        )

    async def end_session(self, cookie: str) -> None:
        await self.db.execute(
            "UPDATE console_sessions SET revoked_at = ? WHERE session_hash = ? "
            "AND revoked_at IS NULL",
            (_stamp(datetime.now(UTC)), _digest(cookie)),
        )

    async def revoke_user(self, user_id: int) -> int:
        """End every session and unused link of a user (/console logout); how many sessions."""
        now = _stamp(datetime.now(UTC))
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE console_sessions SET revoked_at = ? WHERE user_id = ? "
                "AND revoked_at IS NULL AND expires_at > ?",
                (now, user_id, now),
            )
            await conn.execute(
                "UPDATE console_links SET used_at = ? WHERE user_id = ? AND used_at IS NULL",
                (now, user_id),
            )
        return cursor.rowcount


def csrf_matches(session: ConsoleSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(session.csrf_token.encode(), str(given).encode())
