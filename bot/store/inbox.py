"""The durable inbox: every Telegram update is on disk before it is handled.

python-telegram-bot confirms fetched updates to Telegram on its next
``getUpdates`` call, long before a slow answer is sent. Without this table a
crash would lose every message in flight; with it, start-up handles whatever
was left pending, and an update seen before is recognised and not answered twice.

``ReplyJournal`` closes most of the remaining gap: each reply chunk is recorded
as soon as Telegram accepted it, so an update replayed after a crash does not
send again what the customer already has. What stays open is the one request
in flight at the moment of the crash: Telegram may have taken it without the
answer reaching us. That chunk is sent again (a possible duplicate rather than
a possible silence) and counted in ``inbox.uncertain_resends``; the count also
takes in chunks that were still queued behind the rate limiter, which were
surely not delivered, so it is an upper bound on duplicates.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import aiosqlite

from bot.store.db import Database, utcnow

log = logging.getLogger(__name__)

# Starts after which an update that keeps failing is given up (and logged).
MAX_ATTEMPTS = 5

NEW, RETRY, DONE = "new", "retry", "done"


class Inbox:
    def __init__(self, db: Database):
        self.db = db

    async def add(self, update_id: int, chat_key: str, payload: dict[str, Any]) -> bool:
        """Store an update; False when it was already completely handled before."""
        return await self.admit(update_id, chat_key, payload) != DONE

    async def admit(self, update_id: int, chat_key: str, payload: dict[str, Any]) -> str:
        """Store an update: NEW the first time, RETRY when seen but unfinished, else DONE.

        Through the database's group commit: a burst of updates costs one fsync,
        not one each.
        """
        row = (update_id, chat_key, json.dumps(payload, ensure_ascii=False), utcnow())
        return await self.db.write(lambda conn: _insert_update(conn, row))

    async def mark_done(self, update_id: int, journal: ReplyJournal | None = None) -> None:
        """Done, and the update's reply journal dropped, in one transaction."""
        drop = journal is not None and (journal.wrote or journal.replay)
        uncertain = journal.uncertain if journal is not None else 0
        done_at = utcnow()

        async def work(conn: aiosqlite.Connection) -> None:
            await conn.execute(
                "UPDATE inbox SET status = 'done', done_at = ?, "
                "uncertain_resends = uncertain_resends + ? WHERE update_id = ?",
                (done_at, uncertain, update_id),
            )
            if drop:
                await conn.execute("DELETE FROM sent_replies WHERE update_id = ?", (update_id,))

        await self.db.write(work)

    async def mark_failed(self, update_id: int) -> None:
        await self.db.execute(
            "UPDATE inbox SET status = 'failed' WHERE update_id = ?", (update_id,)
        )

    async def pending(self, max_attempts: int = MAX_ATTEMPTS) -> list[dict[str, Any]]:
        """Updates to handle again, oldest first.

        One that already failed ``max_attempts`` times is marked failed instead:
        an update that crashes its handler must not block every future start.
        """
        given_up = await self.db.fetchall(
            "SELECT update_id FROM inbox WHERE status = 'pending' AND attempts >= ?",
            (max_attempts,),
        )
        for row in given_up:
            log.error("update %s failed %d times; giving up on it", row["update_id"], max_attempts)
            await self.mark_failed(int(row["update_id"]))
        rows = await self.db.fetchall(
            "SELECT payload FROM inbox WHERE status = 'pending' ORDER BY update_id"
        )
        return [json.loads(r["payload"]) for r in rows]


class ReplyJournal:
    """What has been sent for one update, so that handling it again sends only the rest.

    A chunk is known by its chat, a digest of its text and how many times the
    same text came before it in this update: when the answer is worked out
    again after a crash, whatever was already delivered word for word is
    skipped, wherever it comes in the new run.
    """

    def __init__(self, db: Database, update_id: int, replay: bool):
        self.db = db
        self.update_id = update_id
        self.replay = replay
        self.closed = False
        self.wrote = False
        self.uncertain = 0
        self._earlier: dict[tuple[int, str, int], tuple[str, int | None]] | None = None
        self._seen: dict[tuple[int, str], int] = {}

    def key(self, chat_id: int, text: str) -> tuple[int, str, int]:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        occurrence = self._seen.get((chat_id, digest), 0)
        self._seen[(chat_id, digest)] = occurrence + 1
        return chat_id, digest, occurrence

    async def before_send(self, key: tuple[int, str, int]) -> int | None:
        """The Telegram message id when this chunk was already delivered, else None.

        Nothing is written before the request: a chunk with no "sent" record is
        sent again on the next start either way, so a "sending" mark would only
        cost a database trip per reply. On a replay, every chunk sent again is
        counted as uncertain (an upper bound on possible duplicates).
        """
        if self.closed:
            return None
        if self.replay:
            if self._earlier is None:
                rows = await self.db.fetchall(
                    "SELECT chat_id, digest, occurrence, status, telegram_message_id "
                    "FROM sent_replies WHERE update_id = ?",
                    (self.update_id,),
                )
                self._earlier = {
                    (r["chat_id"], r["digest"], r["occurrence"]): (
                        r["status"],
                        r["telegram_message_id"],
                    )
                    for r in rows
                }
            earlier = self._earlier.get(key)
            if earlier is not None and earlier[0] == "sent":
                return int(earlier[1] or 0)
            self.uncertain += 1
            log.warning(
                "update %s: a reply may have reached chat %s before the last stop; "
                "sending it again rather than risk silence",
                self.update_id,
                key[0],
            )
        return None

    async def after_send(self, key: tuple[int, str, int], telegram_message_id: int) -> None:
        if self.closed:
            return
        self.wrote = True
        params = (self.update_id, *key, telegram_message_id, utcnow())

        async def work(conn: aiosqlite.Connection) -> None:
            # Through ``write`` so that it commits together with the writes of other chats.
            await conn.execute(
                "INSERT INTO sent_replies (update_id, chat_id, digest, occurrence, status, "
                "telegram_message_id, created_at) VALUES (?, ?, ?, ?, 'sent', ?, ?) "
                "ON CONFLICT DO UPDATE SET status = 'sent', "
                "telegram_message_id = excluded.telegram_message_id",
                params,
            )

        await self.db.write(work)

    async def not_sent(self, key: tuple[int, str, int]) -> None:
        """Telegram refused the chunk: nothing reached the customer and nothing was recorded."""


async def _insert_update(conn: aiosqlite.Connection, row: tuple[Any, ...]) -> str:
    found = await conn.execute_fetchall(
        "INSERT INTO inbox (update_id, chat_key, payload, received_at) "
        "VALUES (?, ?, ?, ?) ON CONFLICT(update_id) DO UPDATE SET "
        "attempts = attempts + 1 RETURNING status, attempts",
        row,
    )
    status, attempts = next(iter(found), (None, 0))
    if status is None or (status != "done" and attempts == 0):
        return NEW
    return DONE if status == "done" else RETRY
