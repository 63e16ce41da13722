"""The one SQLite connection the bot writes through.

aiosqlite runs every call of a connection on one thread, in order, and a
transaction belongs to the connection, not to the coroutine. So all writes go
through ``transaction()``, which holds an asyncio lock: two coroutines can
never interleave statements inside each other's transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.store.migrations import apply_migrations

T = TypeVar("T")


def utcnow() -> str:
    """Timestamps are stored as ISO-8601 UTC text so they sort and read the same everywhere."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Database:
    def __init__(self, path: str | Path):
        self.path = str(path)
        self._conn: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> Database:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._conn.row_factory = aiosqlite.Row
        # WAL lets readers (backups, the CLI) work while the bot writes; NORMAL is
        # durable across process crashes, which is what a kill -9 can do.
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute("PRAGMA synchronous=NORMAL")
        await self._conn.execute("PRAGMA foreign_keys=ON")
        await self._conn.execute("PRAGMA busy_timeout=5000")
        async with self.transaction() as conn:
            await apply_migrations(conn)
        return self

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("database is not open")
        return self._conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write in its own transaction; returns the last row id.

        The connection is in autocommit mode, so a lone statement already is its
        own transaction: one trip to the database thread instead of three
        (BEGIN, statement, COMMIT). The lock still keeps it out of anyone
        else's open transaction.
        """
        async with self._write_lock:
            cursor = await self.conn.execute(sql, params)
            return cursor.lastrowid or 0

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one transaction, in one trip to the database thread.

        Every ``await`` on aiosqlite wakes its thread and then the event loop
        again, which costs far more CPU than the statements themselves; a
        transaction of several statements through ``transaction()`` pays that
        once per statement plus BEGIN and COMMIT. ``work`` gets the plain
        sqlite3 connection and runs on the database thread, so it must not
        touch the event loop.
        """
        async with self._write_lock:
            return await self.conn._execute(_in_transaction, self.conn._conn, work)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        """One trip to the database thread (a cursor would take three: run, fetch, close)."""
        return list(await self.conn.execute_fetchall(sql, params))

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> aiosqlite.Row | None:
        """For queries of one row (by key, or LIMIT 1), in one trip like ``fetchall``."""
        rows = await self.conn.execute_fetchall(sql, params)
        return rows[0] if rows else None


def _in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
