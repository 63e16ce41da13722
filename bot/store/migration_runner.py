"""Running the schema history: each migration once, in order, recorded in ``migrations``.

Apart from the history itself (bot.store.migrations), so that file is the list of
migrations and nothing else, and the one rule of how they run is read in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import aiosqlite

Migration = Callable[[aiosqlite.Connection], Awaitable[None]]


async def apply_pending(
    conn: aiosqlite.Connection, migrations: Sequence[tuple[str, Migration]]
) -> list[str]:
    """Run the migrations ``conn`` has not had yet; the names of those that ran."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    async with conn.execute("SELECT name FROM migrations") as cursor:
        done = {row[0] for row in await cursor.fetchall()}
    applied = []
    for name, fn in migrations:
        if name in done:
            continue
        await fn(conn)
        await conn.execute(
            "INSERT INTO migrations (name, applied_at) VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ'))",
            (name,),
        )
        applied.append(name)
    return applied


async def run_script(conn: aiosqlite.Connection, sql: str) -> None:
    """Run statements one by one: ``executescript`` would commit the migration's transaction."""
    for statement in sql.split(";"):
        lines = [ln for ln in statement.splitlines() if not ln.strip().startswith("--")]
        if "".join(lines).strip():
            await conn.execute("\n".join(lines))
