"""``python main.py chat``: the same core in a terminal, for trying the bot out.

Reads one message per line, so it can be scripted: ``echo "How do I return
an item?" | python main.py chat``. /reset, /human and /cancel work as in Telegram.

A rehearsal must not leave traces in the bot's records, so the terminal keeps its
conversation in a throw-away database (a temporary file, deleted at exit) unless
``--db PATH`` names one. It reloads persona and FAQ edits while it runs, like the
bot. And it plays the team too: /close, /handback and /faq ID act on the open
ticket as the staff desk would (``bot.desk_actions``), so a whole handoff can be
rehearsed in one window; they are commands, never questions for the FAQ. What
Telegram offers as buttons is typed here: /rate N after a close, /forget yes, and
the number of an FAQ entry offered to pick from.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from bot.desk_actions import Agent, close_ticket, hand_back, send_faq_answer
from bot.outcome import FORGET_PREFIX, RATING_PREFIX, Button, Incoming, Outcome, read_choice
from bot.services import Services, open_services
from bot.settings import Settings
from bot.store.conversations import Customer
from bot.store.tickets import Ticket

CONSOLE_CHAT_ID = 1  # the terminal is one customer, with a stable id across runs
STAFF_COMMANDS = ("/close", "/handback", "/faq")


class ConsoleChannel:
    """The ``DeskChannel`` of the terminal: both sides are printed in the one window."""

    def __init__(self, stdout: TextIO, name: Callable[[], str]):
        self.stdout = stdout
        self.name = name  # the persona's, read each time: an edit may rename her
        self.rated_ticket: int | None = None  # the ticket the last rating prompt was for

    async def to_customer(
        self, ticket: Ticket, text: str, buttons: tuple[Button, ...] = ()
    ) -> int | None:
        self.stdout.write(f"{self.name()}: {text}\n")
        labels = [b.label for b in buttons]
        if labels:
            self.stdout.write("   [" + "] [".join(labels) + "]\n")
        if any(b.data.startswith(f"{RATING_PREFIX}:") for b in buttons):
            self.rated_ticket = ticket.id
            self.stdout.write("   (type /rate 1 to /rate 5)\n")
        return None

    async def to_staff(self, ticket: Ticket, text: str) -> None:
        self.stdout.write(f"   (staff) {text}\n")

    async def ticket_closed(self, ticket: Ticket) -> None:
        return None

    async def ticket_reopened(self, ticket: Ticket) -> None:
        return None


async def chat(
    settings: Settings,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
    db: str | None = None,
) -> int:
    scratch = None
    if db is None:
        handle, scratch = tempfile.mkstemp(prefix="support-chat-", suffix=".sqlite3")
        os.close(handle)
    storage = dataclasses.replace(settings.storage, database_path=db or scratch)
    env = settings.env
    if scratch is not None and not env.vector_cache_path:
        # The FAQ's vectors outlive the throw-away database, beside the bot's own, so a
        # second rehearsal does not embed the whole FAQ again.
        vectors = Path(settings.storage.database_path).with_name("chat-vectors.sqlite3")
        env = dataclasses.replace(env, vector_cache_path=str(vectors))
    settings = dataclasses.replace(settings, storage=storage, env=env)
    if stdin.isatty() and settings.retrieval.semantic:
        # The first start embeds the whole FAQ, half a minute of silence otherwise.
        sys.stderr.write(
            "Getting ready (the first start reads the FAQ by meaning, about 30 s)...\n"
        )
    try:
        services = await open_services(settings)
        watcher = asyncio.create_task(
            services.knowledge.watch(settings.telegram.reload_poll_seconds)
        )
        try:
            return await _converse(services, stdin, stdout)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await services.close()
    finally:
        if scratch is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(scratch + suffix)


async def _converse(services: Services, stdin: TextIO, stdout: TextIO) -> int:
    core = services.core
    user = os.environ.get("USER") or "terminal"
    customer = Customer(chat_id=CONSOLE_CHAT_ID, user_id=CONSOLE_CHAT_ID, first_name=user)
    interactive = stdin.isatty()

    def name() -> str:
        return services.knowledge.current.persona.name  # an edit may rename her

    channel = ConsoleChannel(stdout, name)

    offered: list[tuple[str, str]] = []  # the FAQ entries last offered, typed as numbers

    def show(outcome: Outcome) -> None:
        for reply in outcome.replies:
            stdout.write(f"{name()}: {reply.text}\n")
            picks = [(b.label, read_choice(b.data)) for b in reply.buttons]
            picks = [(label, choice) for label, choice in picks if choice is not None]
            if picks:
                offered[:] = [choice for _, choice in picks]
                for number, (label, _) in enumerate(picks, 1):
                    stdout.write(f"   {number}. {label}\n")
                numbers = "1" if len(picks) == 1 else f"1 to {len(picks)}"
                stdout.write(f"   (type {numbers} for its answer, or /human)\n")
                continue
            labels = [b.label for b in reply.buttons if not b.data.startswith("fb:")]
            forget = any(b.data.startswith(f"{FORGET_PREFIX}:") for b in reply.buttons)
            hint = "/forget yes or /forget no" if forget else "/human or /cancel"
            if labels:
                stdout.write("   [" + "] [".join(labels) + f"]  (type {hint})\n")
        if outcome.ticket is not None:
            stdout.write(f"   (ticket #{outcome.ticket.id}, {outcome.ticket.reason})\n")
        stdout.flush()

    if interactive:
        mode = "with the model" if services.llm else "FAQ-only (no LLM configured)"
        stdout.write(
            f"Chatting with {name()}, {mode}. /reset, /human, /cancel, /forget; as the team: "
            "/close, /handback, /faq ID. Ctrl+D to quit.\n"
        )
        show(await core.start(customer))
    loop = asyncio.get_running_loop()
    while True:
        if interactive:
            stdout.write("you: ")
            stdout.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            break
        text = line.rstrip("\n").strip()
        if not text:
            continue
        command, _, rest = text.partition(" ")
        command, rest = command.lower(), rest.strip()
        if command in STAFF_COMMANDS:
            await _as_staff(services, channel, command, rest, stdout, user)
            stdout.flush()
        elif text.isdecimal() and 1 <= int(text) <= len(offered):
            show(await core.choose(customer, *offered[int(text) - 1]))
        else:
            show(await _as_customer(services, customer, channel, command, rest, text))
    return 0


async def _as_customer(
    services: Services,
    customer: Customer,
    channel: ConsoleChannel,
    command: str,
    rest: str,
    text: str,
) -> Outcome:
    """The core's answer to a line: a command as in Telegram, a typed button, or a question."""
    core = services.core
    if command == "/reset":
        return await core.reset(customer)
    if command == "/human":
        return await core.request_human(customer)
    if command == "/cancel":
        return await core.withdraw(customer)
    if command == "/start":
        return await core.start(customer)
    if command == "/help":
        return await core.help(customer)
    if command == "/forget":
        if rest.lower() in ("yes", "no"):
            return await core.forget(customer, confirmed=rest.lower() == "yes")
        return core.ask_forget(customer)
    if command == "/rate" and rest in ("1", "2", "3", "4", "5"):
        if channel.rated_ticket is None:
            return Outcome()
        return await core.rate_ticket(customer, channel.rated_ticket, int(rest))
    return await core.handle(Incoming(customer, text))


async def _as_staff(
    services: Services,
    channel: ConsoleChannel,
    command: str,
    argument: str,
    stdout: TextIO,
    user: str,
) -> None:
    """A team action on the terminal customer's open ticket, printed as staff see it."""
    persona = services.knowledge.current.persona
    ticket = await services.tickets.open_for_chat(CONSOLE_CHAT_ID)
    if ticket is None:
        stdout.write(f"   (staff) {persona.staff_message('no_ticket', command=command[1:])}\n")
        return
    agent = Agent(id=0, name=user, role="console")
    if command == "/close":
        result = await close_ticket(services, channel, ticket, agent)
    elif command == "/handback":
        result = await hand_back(services, channel, ticket, agent)
    elif not argument:
        result = None
        stdout.write(f"   (staff) {persona.staff_message('faq_usage')}\n")
    else:
        result = await send_faq_answer(services, channel, ticket, argument.split()[0], agent)
    # A done close or handback was already announced in the staff's place (to_staff).
    if result is not None and result.notice and (command == "/faq" or not result.ok):
        stdout.write(f"   (staff) {result.notice}\n")
