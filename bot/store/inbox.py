"""The durable inbox: every Telegram update is on disk before it is handled.

python-telegram-bot confirms fetched updates to Telegram on its next
``getUpdates`` call, long before a slow answer is sent. Without this table a
crash would lose every message in flight; with it, start-up handles whatever
was left pending, and an update seen before is recognised and not answered twice.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.store.db import Database, utcnow


class Inbox:
    def __init__(self, db: Database):
        self.db = db
        self._batch: list[tuple[tuple[Any, ...], asyncio.Future[bool]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def add(self, update_id: int, chat_key: str, payload: dict[str, Any]) -> bool:
        """Store an update; False when it was already completely handled before.

        Inserts that arrive together are written in one transaction (group
        commit): a burst of updates costs one fsync, not one each.
        """
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        row = (update_id, chat_key, json.dumps(payload, ensure_ascii=False), utcnow())
        self._batch.append((row, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._batch:
            batch, self._batch = self._batch, []
            try:
                fresh: list[bool] = []
                async with self.db.transaction() as conn:
                    for row, _ in batch:
                        cursor = await conn.execute(
                            "INSERT INTO inbox (update_id, chat_key, payload, received_at) "
                            "VALUES (?, ?, ?, ?) ON CONFLICT(update_id) DO UPDATE SET "
                            "attempts = attempts + 1 RETURNING status",
                            row,
                        )
                        status = await cursor.fetchone()
                        fresh.append(status is None or status[0] != "done")
                for (_, future), is_fresh in zip(batch, fresh, strict=True):
                    if not future.done():
                        future.set_result(is_fresh)
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)

    async def mark_done(self, update_id: int) -> None:
        await self.db.execute(
            "UPDATE inbox SET status = 'done', done_at = ? WHERE update_id = ?",
            (utcnow(), update_id),
        )

    async def mark_failed(self, update_id: int) -> None:
        await self.db.execute(
            "UPDATE inbox SET status = 'failed' WHERE update_id = ?", (update_id,)
        )

    async def pending(self) -> list[dict[str, Any]]:
        rows = await self.db.fetchall(
            "SELECT payload FROM inbox WHERE status = 'pending' ORDER BY update_id"
        )
        return [json.loads(r["payload"]) for r in rows]
