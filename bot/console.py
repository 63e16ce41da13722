"""``python main.py chat``: the same core in a terminal.

Reads one message per line, so it can be scripted: ``echo "How do I return
an item?" | python main.py chat``. /reset and /human work as in Telegram.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TextIO

from bot.core import Incoming, Outcome
from bot.services import open_services
from bot.settings import Settings
from bot.store.conversations import Customer

CONSOLE_CHAT_ID = 1  # the terminal is one customer, with a stable id across runs


async def chat(settings: Settings, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> int:
    services = await open_services(settings)
    core = services.core
    user = os.environ.get("USER") or "terminal"
    customer = Customer(chat_id=CONSOLE_CHAT_ID, user_id=CONSOLE_CHAT_ID, first_name=user)
    interactive = stdin.isatty()
    name = services.knowledge.current.persona.name

    def show(outcome: Outcome) -> None:
        for reply in outcome.replies:
            stdout.write(f"{name}: {reply.text}\n")
            labels = [b.label for b in reply.buttons if not b.data.startswith("fb:")]
            if labels:
                stdout.write("   [" + "] [".join(labels) + "]  (type /human for a person)\n")
        if outcome.ticket is not None:
            stdout.write(f"   (ticket #{outcome.ticket.id}, {outcome.ticket.reason})\n")
        stdout.flush()

    try:
        if interactive:
            mode = "with the model" if services.llm else "FAQ-only (no LLM configured)"
            stdout.write(f"Chatting with {name}, {mode}. /reset, /human, Ctrl+D to quit.\n")
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
            command = text.split()[0].lower()
            if command == "/reset":
                show(await core.reset(customer))
            elif command == "/human":
                show(await core.request_human(customer))
            elif command == "/start":
                show(await core.start(customer))
            elif command == "/help":
                show(await core.help(customer))
            else:
                show(await core.handle(Incoming(customer, text)))
    finally:
        await services.close()
    return 0
