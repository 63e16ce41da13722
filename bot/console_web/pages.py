"""The web console's pages, on the bot's own aiohttp server.

Every page asks ``ConsoleAccess`` for the session behind the cookie and the
``RoleCheck`` for what its user is now; nothing is decided from the URL. No
customer data goes into a URL (only ticket ids): text search is sent by POST,
and POSTs carry the session's CSRF token. The server keeps no access log, so
the one-time token of a login link is never written anywhere. The HTML of each page is
drawn in ``overview_page``, ``ticket_pages`` and ``gaps_page``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bot.console_web import queries
from bot.console_web.auth import (
    COOKIE_NAME,
    ROLES,
    SESSION_HOURS,
    ConsoleAccess,
    ConsoleSession,
    RoleCheck,
    allows,
    csrf_matches,
)
from bot.console_web.gaps_page import gaps_body
from bot.console_web.overview_page import overview_body
from bot.console_web.templates import STYLE, esc, no_access, page
from bot.console_web.ticket_pages import ticket_body, ticket_list_body

log = logging.getLogger(__name__)

Handler = Callable[[web.Request, ConsoleSession, str], Awaitable[web.StreamResponse]]

SEND_CONSOLE = (
    "Please open the console with a link from the bot: send /console to the bot in a private chat."
)
BAD_LINK = (
    "This link is not valid: it was used already, it expired (links last 10 minutes) "
    "or it is wrong. Send /console to the bot in a private chat for a new one."
)
NOT_YOURS = "This page is for admins. Your console shows tickets and transcripts."
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def _html(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, content_type="text/html", headers=HEADERS)


class ConsolePages:
    def __init__(self, access: ConsoleAccess, roles: RoleCheck, services: Callable[[], Any]):
        self.access = access
        self.roles = roles
        self._services = services

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/console/style.css", self.style)
        router.add_get("/console/login", self.login)
        router.add_post("/console/logout", self._guard("staff", self.logout, post=True))
        router.add_get("/console", self._guard("admin", self.overview))
        router.add_get("/console/tickets", self._guard("staff", self.tickets))
        router.add_post("/console/tickets", self._guard("staff", self.tickets, post=True))
        router.add_get(r"/console/tickets/{ticket_id:\d+}", self._guard("staff", self.ticket))
        router.add_get("/console/gaps", self._guard("admin", self.gaps))
        router.add_get("/console/gaps/draft.yaml", self._guard("admin", self.gaps_draft))
        router.add_get("/console/gaps/eval.yaml", self._guard("admin", self.gaps_eval))

    @property
    def db(self) -> Any:
        return self._services().db

    # -- access ---------------------------------------------------------------------------

    def _guard(
        self, needed: str, handler: Handler, *, post: bool = False
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Session, current role and (for POST) CSRF token, checked before ``handler`` runs."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            session = await self.access.session(request.cookies.get(COOKIE_NAME))
            if session is None:
                return _html(no_access(SEND_CONSOLE), 403)
            now = await self.roles(session.user_id)
            if now is None:
                return _html(no_access(SEND_CONSOLE), 403)
            # The role a session was opened with is a ceiling: never more than that.
            role = min(session.role, now, key=ROLES.index)
            if not allows(role, needed):
                return _html(
                    page(
                        "Not for you",
                        f'<p class="notice">{esc(NOT_YOURS)}</p>',
                        role=role,
                        csrf=session.csrf_token,
                    ),
                    403,
                )
            if post:
                form = await request.post()
                if not csrf_matches(session, form.get("csrf")):
                    log.warning("console: POST without a valid CSRF token refused")
                    return _html(no_access("The form expired; reload the page."), 403)
            return await handler(request, session, role)

        return guarded

    async def style(self, request: web.Request) -> web.Response:
        return web.Response(
            text=STYLE, content_type="text/css", headers={"Cache-Control": "max-age=3600"}
        )

    async def login(self, request: web.Request) -> web.StreamResponse:
        """Trade a one-time token for a session cookie, then drop the token from the URL."""
        opened = await self.access.redeem(request.query.get("token", ""))
        if opened is None:
            return _html(no_access(BAD_LINK), 403)
        cookie, session = opened
        target = "/console" if session.role == "admin" else "/console/tickets"
        response = web.Response(status=303, headers={**HEADERS, "Location": target})
        response.set_cookie(
            COOKIE_NAME,
            cookie,
            max_age=SESSION_HOURS * 3600,
            path="/console",
            httponly=True,
            samesite="Strict",
            secure=self.access.secure_cookies,
        )
        return response

    async def logout(
        self, request: web.Request, session: ConsoleSession, role: str
    ) -> web.StreamResponse:
        await self.access.end_session(request.cookies.get(COOKIE_NAME, ""))
        response = _html(no_access("You are logged out. Send /console to the bot to come back."))
        response.del_cookie(COOKIE_NAME, path="/console")
        return response

    # -- overview -------------------------------------------------------------------------

    async def overview(
        self, request: web.Request, session: ConsoleSession, role: str
    ) -> web.StreamResponse:
        days = queries.period_days(request.query.get("days"))
        body = overview_body(await queries.overview(self.db, days))
        return _html(page(f"Overview, last {days} days", body, role=role, csrf=session.csrf_token))

    # -- tickets --------------------------------------------------------------------------

    async def tickets(
        self, request: web.Request, session: ConsoleSession, role: str
    ) -> web.StreamResponse:
        # aiohttp keeps the parsed form, so this reads what the guard already checked.
        source = await request.post() if request.method == "POST" else request.query
        chosen = queries.TicketFilter.from_form(source)
        if request.method == "GET":  # text search only by POST: it stays out of URLs
            chosen = queries.TicketFilter(**{**chosen.__dict__, "text": ""})
        rows = await queries.list_tickets(self.db, chosen)
        reasons, languages = await queries.filter_choices(self.db)
        body = ticket_list_body(chosen, rows, reasons, languages, session.csrf_token)
        return _html(page("Tickets", body, role=role, csrf=session.csrf_token))

    async def ticket(
        self, request: web.Request, session: ConsoleSession, role: str
    ) -> web.StreamResponse:
        services = self._services()
        ticket = await services.tickets.get(int(request.match_info["ticket_id"]))
        if ticket is None:
            return _html(
                page("Not found", "<p>No such ticket.</p>", role=role, csrf=session.csrf_token), 404
            )
        name = await queries.customer_name(self.db, ticket.chat_id)
        messages = await queries.transcript(self.db, ticket)
        events = await services.tickets.events(ticket.id)
        body = ticket_body(ticket, name, messages, events)
        return _html(page(f"Ticket #{ticket.id}", body, role=role, csrf=session.csrf_token))

    # -- knowledge gaps -------------------------------------------------------------------

    async def _find_gaps(self, days: int) -> list[Any] | None:
        """The gap groups of the period; None when this version has no gap report."""
        try:
            from bot.gaps import find_gaps
        except ImportError:
            return None
        return await find_gaps(self._services(), days=days)

    async def _gaps_or_problem(self, days: int) -> tuple[list[Any] | None, str | None]:
        try:
            return await self._find_gaps(days), None
        except Exception:  # the page says so; the bot and the other pages keep working
            log.exception("console: the knowledge gap report failed")
            return None, "The knowledge gap report could not be built just now; see the log."

    async def gaps(
        self, request: web.Request, session: ConsoleSession, role: str
    ) -> web.StreamResponse:
        days = queries.period_days(request.query.get("days"))
        groups = await self._find_gaps(days)
        if groups is None:
            body = (
                '<p class="notice">The knowledge gap report is not available in this version.</p>'
            )
        else:
            body = gaps_body(groups, days)
        return _html(page("Knowledge gaps", body, role=role, csrf=session.csrf_token))

    async def _draft(self, request: web.Request, kind: str) -> web.StreamResponse:
        days = queries.period_days(request.query.get("days"))
        groups, problem = await self._gaps_or_problem(days)
        if groups is None:
            text = problem or "The knowledge gap report is not available."
            return _html(no_access(text), 503 if problem else 404)
        from bot.gaps import draft_eval_yaml, draft_faq_yaml

        text = draft_faq_yaml(groups) if kind == "draft" else draft_eval_yaml(groups)
        return web.Response(
            text=text,
            content_type="application/yaml",
            headers={
                **HEADERS,
                "Content-Disposition": f'attachment; filename="gaps-{kind}.yaml"',
            },
        )

    async def gaps_draft(
        self, request: web.Request, session: ConsoleSession, role: str
    ) -> web.StreamResponse:
        return await self._draft(request, "draft")

    async def gaps_eval(
        self, request: web.Request, session: ConsoleSession, role: str
    ) -> web.StreamResponse:
        return await self._draft(request, "eval")
