"""``tickets list|show|export|close|reopen|note`` and ``stats``: tickets from the command line."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import getpass
import json
import sys

from bot.settings import Settings
from bot.stats import compute_stats
from bot.store.conversations import ConversationStore
from bot.store.db import Database
from bot.store.tickets import TicketStore


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.tickets_command in ("close", "reopen", "note"):
        return await _act(args, settings)
    async with Database(settings.storage.database_path) as db:
        tickets = TicketStore(db)
        if args.tickets_command == "list":
            found = await tickets.list(args.status)
            if args.json:
                print(json.dumps([dataclasses.asdict(t) for t in found], ensure_ascii=False))
                return 0
            if not found:
                print("no tickets")
            for t in found:
                print(
                    f"#{t.id:<5} {t.status:<8} {t.reason:<18} chat {t.chat_id:<14} "
                    f"{t.created_at[:16]}  {t.assignee_name or ''}"
                )
            return 0
        if args.tickets_command == "show":
            ticket = await tickets.get(args.id)
            if ticket is None:
                print(f"no ticket #{args.id}", file=sys.stderr)
                return 1
            customer = await ConversationStore(db).get_customer(ticket.chat_id)
            print(f"Ticket #{ticket.id} · {ticket.status} · {ticket.reason}")
            print(
                f"Customer: {customer.display_name if customer else ticket.chat_id} "
                f"(chat {ticket.chat_id})"
            )
            print(
                f"Created {ticket.created_at}; first response {ticket.first_response_at or '-'}; "
                f"resolved {ticket.resolved_at or '-'}; rating {ticket.rating or '-'}"
            )
            print(f"Summary: {ticket.summary or '-'}")
            print("\nEvents:")
            for e in await tickets.events(ticket.id):
                print(
                    f"  {e['created_at'][:19]} {e['event']:<10} {e['reason'] or '':<16} "
                    f"{e['actor'] or ''} {e['detail'] or ''}"
                )
            print("\nTranscript:")
            for m in await tickets.transcript(ticket):
                print(
                    f"  {m['created_at'][:19]} {m['role']:<8} {m['text'] or '[' + m['kind'] + ']'}"
                )
            return 0
        found = await tickets.list()
        rows = [dataclasses.asdict(t) for t in found]
        if args.format == "jsonl":
            for row in rows:
                print(json.dumps(row, ensure_ascii=False))
        else:
            fields = [f.name for f in dataclasses.fields(found[0])] if found else ["id"]
            writer = csv.DictWriter(sys.stdout, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        return 0


async def _act(args: argparse.Namespace, settings: Settings) -> int:
    """The staff group's /close, /reopen and /note, through the same desk actions.

    The command line has no Telegram connection, so nobody is messaged: the
    ticket changes in the database, and a running bot acts on the change
    (relaying or answering the customer's next message accordingly).
    """
    from bot.desk_actions import Agent, add_note, close_ticket, reopen_ticket
    from bot.services import open_services

    services = await open_services(settings)
    try:
        ticket = await services.tickets.get(args.id)
        if ticket is None:
            print(
                f"no ticket #{args.id}; `python main.py tickets list` shows them", file=sys.stderr
            )
            return 1
        agent = Agent(0, f"{getpass.getuser()} (command line)", role="cli")
        if args.tickets_command == "close":
            result = await close_ticket(services, None, ticket, agent)
        elif args.tickets_command == "reopen":
            result = await reopen_ticket(services, None, ticket, agent)
        else:
            result = await add_note(services, ticket, agent, " ".join(args.text))
    finally:
        await services.close()
    if not result.ok:
        print(result.notice, file=sys.stderr)
        return 1
    print(result.notice)
    if args.tickets_command == "close":
        print("The customer was not messaged; close tickets in the staff group to tell them.")
    return 0


async def stats(args: argparse.Namespace, settings: Settings) -> int:
    async with Database(settings.storage.database_path) as db:
        for line in (await compute_stats(db, args.days)).lines():
            print(line)
    return 0
