"""Where jobs live: one row each in SQLite, their inputs and audio in a folder per job.

`JobStore` is the protocol the runner and routes use; `SqliteJobStore` is the embedded default
(one file, no server). Postgres and object storage would implement the same few methods. SQLite
calls are made on the event loop: each is one small indexed statement in WAL mode (well under a
millisecond), cheaper than a thread hop.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gateway.jobs.model import JobState


@dataclass
class StoredFile:
    field: str
    filename: str | None
    path: str
    media_type: str
    size: int


@dataclass
class JobRecord:
    id: str
    kind: str
    """`generate` (describe, then compose) or `compose` (a description was given): shown in
    logs; both run through `Generator.generate`."""
    state: JobState
    created: float
    updated: float
    fields: dict[str, str]
    files: list[StoredFile] = field(default_factory=list)
    brief: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    media_type: str | None = None
    audio_bytes: int = 0
    duration_s: float | None = None
    sample_rate: int | None = None
    channels: int | None = None
    attempts: int = 0
    webhook_url: str | None = None
    finished: float | None = None


class JobStore(Protocol):
    def folder(self, job_id: str) -> Path:
        """The job's own folder (inputs and audio)."""

    def audio_path(self, job_id: str) -> Path: ...

    def create(self, record: JobRecord) -> None: ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def save(self, record: JobRecord) -> None: ...

    def unfinished(self) -> list[JobRecord]:
        """Jobs that had not ended when the service last stopped, oldest first."""

    def expire(self, finished_before: float) -> list[str]:
        """Delete jobs that ended before this time, files included; their ids."""


_COLUMNS = (
    "id, kind, state, created, updated, fields, files, brief, error, media_type, audio_bytes, "
    "duration_s, sample_rate, channels, attempts, webhook_url, finished"
)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL, fields TEXT NOT NULL, files TEXT NOT NULL,
    brief TEXT, error TEXT, media_type TEXT, audio_bytes INTEGER NOT NULL, duration_s REAL,
    sample_rate INTEGER, channels INTEGER, attempts INTEGER NOT NULL, webhook_url TEXT,
    finished REAL
)"""


class SqliteJobStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "jobs.sqlite3", check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._db.execute("CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created)")
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def folder(self, job_id: str) -> Path:
        return self._root / job_id

    def audio_path(self, job_id: str) -> Path:
        return self.folder(job_id) / "audio"

    def create(self, record: JobRecord) -> None:
        self.folder(record.id).mkdir(parents=True, exist_ok=True)
        self._write("INSERT", record)

    def save(self, record: JobRecord) -> None:
        record.updated = time.time()
        self._write("REPLACE", record)

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return _record(row) if row else None

    def unfinished(self) -> list[JobRecord]:
        open_states = tuple(s.value for s in JobState if not s.finished)
        marks = ",".join("?" * len(open_states))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY created",
                open_states,
            ).fetchall()
        return [_record(row) for row in rows]

    def expire(self, finished_before: float) -> list[str]:
        with self._lock:
            ids = [
                row[0]
                for row in self._db.execute(
                    "SELECT id FROM jobs WHERE finished IS NOT NULL AND finished < ?",
                    (finished_before,),
                )
            ]
            self._db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in ids])
            self._db.commit()
        for job_id in ids:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)
        return ids

    def _write(self, verb: str, r: JobRecord) -> None:
        values = (
            r.id,
            r.kind,
            r.state.value,
            r.created,
            r.updated,
            json.dumps(r.fields),
            json.dumps([asdict(f) for f in r.files]),
            json.dumps(r.brief) if r.brief is not None else None,
            json.dumps(r.error) if r.error is not None else None,
            r.media_type,
            r.audio_bytes,
            r.duration_s,
            r.sample_rate,
            r.channels,
            r.attempts,
            r.webhook_url,
            r.finished,
        )
        marks = ",".join("?" * len(values))
        with self._lock:
            self._db.execute(f"{verb} INTO jobs ({_COLUMNS}) VALUES ({marks})", values)
            self._db.commit()


def _record(row: tuple[Any, ...]) -> JobRecord:
    (id_, kind, state, created, updated, fields, files, brief, error, media_type, audio_bytes,
     duration_s, sample_rate, channels, attempts, webhook_url, finished) = row  # fmt: skip
    return JobRecord(
        id=id_,
        kind=kind,
        state=JobState(state),
        created=created,
        updated=updated,
        fields=json.loads(fields),
        files=[StoredFile(**f) for f in json.loads(files)],
        brief=json.loads(brief) if brief else None,
        error=json.loads(error) if error else None,
        media_type=media_type,
        audio_bytes=audio_bytes,
        duration_s=duration_s,
        sample_rate=sample_rate,
        channels=channels,
        attempts=attempts,
        webhook_url=webhook_url,
        finished=finished,
    )
