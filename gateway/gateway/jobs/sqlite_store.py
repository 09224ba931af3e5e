"""The embedded job store: one SQLite file beside the job folders, for one gateway process.

Calls run on the event loop: each is one small indexed statement in WAL mode (well under a
millisecond), cheaper than a thread hop. One process owns the file, so at open every lease is
stale (its runner died with the previous process): they are given up at once and the jobs are
claimed again right away, each counted as a run that was cut.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from gateway.jobs.store import INDEXES, LATER_COLUMNS, RUNNING, SqlJobStore, schema, sql_states

_ADDED_COLUMNS = {  # columns later than the first release: added to an older file at open
    "client": "TEXT",
    "owner": "TEXT",
    "lease_until": "REAL NOT NULL DEFAULT 0",
    "cancel_requested": "INTEGER NOT NULL DEFAULT 0",
    **LATER_COLUMNS,
}


class SqliteJobStore(SqlJobStore):
    NOW = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "jobs.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(schema("REAL"))
        present = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, kind in _ADDED_COLUMNS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {kind}")
        for index in INDEXES:
            self._db.execute(index)
        self._db.execute(f"UPDATE jobs SET lease_until = 0 WHERE state IN ({sql_states(RUNNING)})")
        self._db.commit()

    async def close(self) -> None:
        self._db.close()

    async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
            self._db.commit()
        return rows

    async def _count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._lock:
            changed = self._db.execute(sql, params).rowcount
            self._db.commit()
        return changed
