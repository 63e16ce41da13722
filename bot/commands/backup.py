"""``python main.py backup PATH``: a consistent copy of the database while the bot runs.

Copying the file with ``cp`` while the bot writes can catch a page half
written, and misses whatever still sits in the WAL file. SQLite's online
backup API copies a consistent snapshot through a normal read transaction;
in WAL mode that never blocks the bot's writes.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.settings import Settings


def backup_database(source: str, target: str | Path) -> Path:
    """Copy ``source`` to ``target`` atomically and check the copy; returns the target path.

    A folder (one that exists, or any path ending in a slash) gets a new file
    named after the database and the time, so backups into one folder never
    overwrite each other.
    """
    as_folder = str(target).endswith(("/", os.sep)) or Path(target).is_dir()
    target = Path(target)
    if as_folder:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        name = Path(source)
        target = target / f"{name.stem}-{stamp}{name.suffix or '.sqlite3'}"
    if not Path(source).exists():
        raise FileNotFoundError(f"{source}: no database here")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(partial)
        try:
            # One step (pages=-1): the snapshot is taken under a single read transaction.
            src.backup(dst)
            # A backup is one self-contained file, not a WAL database needing its -wal file.
            dst.execute("PRAGMA journal_mode=DELETE")
            result = dst.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()
    if result != "ok":
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"the copy failed its integrity check: {result}")
    os.replace(partial, target)
    return target


def run(path: str, settings: Settings) -> int:
    source = settings.storage.database_path
    try:
        written = backup_database(source, path)
    except (OSError, sqlite3.Error, RuntimeError) as error:
        print(f"backup failed: {error}", file=sys.stderr)
        return 1
    print(f"backed up {source} to {written} ({written.stat().st_size} bytes, integrity ok)")
    return 0
