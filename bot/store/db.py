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
        self._queued: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []

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

        Writes that queue up behind one in progress go together, in one
        transaction and one trip (group commit), each in a savepoint of its own
        so that one failing does not undo the others. Each caller still returns
        only once its work is committed.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        entry = (work, future)
        self._queued.append(entry)
        try:
            async with self._write_lock:
                if entry in self._queued:  # else an earlier group took it
                    group, self._queued = self._queued, []
                    trip = asyncio.ensure_future(
                        self.conn._execute(_in_group, self.conn._conn, [w for w, _ in group])
                    )
                    trip.add_done_callback(lambda trip: _settle(trip, group))
                    with contextlib.suppress(Exception):  # every writer reads its own future
                        await asyncio.shield(trip)
            return await future
        except asyncio.CancelledError:
            if entry in self._queued:  # not started: it is not written
                self._queued.remove(entry)
            else:  # it may still be written; nobody is left to read its outcome
                future.add_done_callback(_ignore_outcome)
            raise

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


def _in_group(
    conn: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], Any]]
) -> list[tuple[bool, Any]]:
    """Run each work in a savepoint of one transaction: (True, result) or (False, error)."""
    if len(works) == 1:
        return [(True, _in_transaction(conn, works[0]))]
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for work in works:
            conn.execute("SAVEPOINT one_write")
            try:
                result = work(conn)
            except Exception as error:
                conn.execute("ROLLBACK TO one_write")
                conn.execute("RELEASE one_write")
                outcomes.append((False, error))
            else:
                conn.execute("RELEASE one_write")
                outcomes.append((True, result))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return outcomes


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _settle(trip: asyncio.Future[Any], group: list[tuple[Any, asyncio.Future[Any]]]) -> None:
    """Hand each writer of a group its own result, or the error of the whole trip."""
    if trip.cancelled():
        outcomes: Any = None
        error: BaseException | None = asyncio.CancelledError()
    else:
        error = trip.exception()
        outcomes = None if error is not None else trip.result()
    for number, (_, future) in enumerate(group):
        if future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            ok, value = outcomes[number]
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


def _in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
