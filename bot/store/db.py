"""The one SQLite connection the bot writes through.

aiosqlite runs every call of a connection on one thread, in order, and a
transaction belongs to the connection, not to the coroutine. So all writes go
through ``transaction()``, ``execute()`` or ``write()``, which hold an asyncio
lock: two coroutines can never interleave statements inside each other's
transaction. ``write()`` is the one layer that batches writes (group commit),
on aiosqlite's public API only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.store.migrations import apply_migrations

T = TypeVar("T")
# One write: statements on the connection, inside the transaction ``write`` opens.
Work = Callable[[aiosqlite.Connection], Awaitable[T]]


def utcnow() -> str:
    """Timestamps are stored as ISO-8601 UTC text so they sort and read the same everywhere."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def contains_pattern(term: str) -> str:
    """A LIKE pattern for ``term`` anywhere in a text, used with ``ESCAPE '\\'``: a "%"
    or "_" someone searches for is a character to find, not a wildcard."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Database:
    def __init__(self, path: str | Path):
        self.path = str(path)
        self._conn: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._queued: list[tuple[Work[Any], asyncio.Future[Any]]] = []
        self._committing: asyncio.Task[None] | None = None

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
        if self._committing is not None:
            with contextlib.suppress(Exception):
                await self._committing
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

    async def write(self, work: Work[T]) -> T:
        """Run ``work`` in a transaction; returns once it is committed.

        Writes that queue up while a group is being committed go together in the
        next one (group commit): one transaction and one fsync for a burst; a
        write that fails undoes only itself (``_commit_group``).
        The groups are committed by a task of their own, so a writer that is
        cancelled never leaves a transaction half done: a write not started yet
        is dropped, one started is committed with its group.
        """
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        entry = (work, future)
        self._queued.append(entry)
        if self._committing is None or self._committing.done():
            self._committing = asyncio.ensure_future(self._commit_queued())
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if entry in self._queued:  # not started: it is not written
                self._queued.remove(entry)
                future.cancel()
            else:  # it may still be written; nobody is left to read its outcome
                future.add_done_callback(_ignore_outcome)
            raise

    async def _commit_queued(self) -> None:
        try:
            while self._queued:
                group, self._queued = self._queued, []
                async with self._write_lock:
                    await _commit_group(self.conn, group)
        except BaseException:
            for _, future in self._queued:  # nobody will commit them now
                future.cancel()
            self._queued = []
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


async def _commit_group(
    conn: aiosqlite.Connection, group: list[tuple[Work[Any], asyncio.Future[Any]]]
) -> None:
    """The whole group in one transaction; every writer gets its own outcome.

    When one write fails, that transaction is rolled back and each write runs again
    in a transaction of its own, so the failing one undoes only itself. Failures are
    rare, and a savepoint around every write would cost two more trips to the
    database thread per write on every message.
    """
    works = [work for work, _ in group]
    try:
        try:
            outcomes = await _run_together(conn, works)
        except Exception as error:
            if len(works) == 1:
                outcomes = [(False, error)]
            else:
                outcomes = [await _run_alone(conn, work) for work in works]
    except BaseException:
        for _, future in group:  # cancelled: nobody will commit them now
            if not future.done():
                future.cancel()
        raise
    for (_, future), (ok, value) in zip(group, outcomes, strict=True):
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


async def _run_together(
    conn: aiosqlite.Connection, works: list[Work[Any]]
) -> list[tuple[bool, Any]]:
    """Every work in one transaction, committed only if none fails."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        results = [await work(conn) for work in works]
        await conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            await conn.execute("ROLLBACK")
        raise
    return [(True, result) for result in results]


async def _run_alone(conn: aiosqlite.Connection, work: Work[Any]) -> tuple[bool, Any]:
    try:
        (outcome,) = await _run_together(conn, [work])
    except Exception as error:
        return False, error
    return outcome


def _ignore_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
