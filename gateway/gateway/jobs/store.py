"""Where jobs live: one row each in a SQL database, their inputs and audio in a folder per job.

`JobStore` is the protocol the runner and routes use. The queue is the table itself: a worker
*claims* the oldest queued job (or one whose runner's lease has expired) and holds it with a
lease it renews while the job runs. Every write of a running job is fenced by its owner: a
replica that lost its lease (it stalled, and another took the job over) can write nothing more.
A cancel is a flag on the row that the owner's heartbeat picks up, so it reaches the job from
any replica.

`SqlJobStore` holds the statements; `SqliteJobStore` (embedded default, one gateway process)
and `PostgresJobStore` (any number of gateways, job folders on a shared volume) run them. Time
for leases is the database's own clock, so replicas with skewed clocks agree on expiry.
"""

from __future__ import annotations

import json
import shutil
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

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
    """Runs started (claims); a job claimed again after a runner died counts on."""
    webhook_url: str | None = None
    finished: float | None = None
    client: str | None = None
    """Fingerprint of the API key that submitted it (None when keys are off): only that key
    sees the job."""
    owner: str | None = None
    """The runner holding the job's lease, while it runs."""
    cancel_requested: bool = False
    analysis: dict[str, Any] | None = None
    """The judge's measures of the finished audio against the brief (None until done, or
    when it could not be measured)."""


RUNNING = (JobState.DESCRIBING, JobState.COMPOSING)


class JobStore(Protocol):
    def folder(self, job_id: str) -> Path:
        """The job's own folder (inputs and audio)."""

    def audio_path(self, record: JobRecord) -> Path:
        """The audio of the record's run: each run writes its own file, so a runner that lost
        its lease and has not noticed yet cannot write into its successor's audio."""

    async def create(self, record: JobRecord) -> None: ...

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def page(
        self, client: str | None, limit: int, after: str | None, state: JobState | None
    ) -> list[JobRecord]:
        """The client's jobs, newest first, from just after job `after` (None: from the top)."""

    async def queued(self) -> int:
        """Jobs waiting to be claimed, over all replicas."""

    async def claim(self, owner: str, lease_s: float) -> JobRecord | None:
        """Take the oldest claimable job for `owner`: queued, or running under an expired
        lease. It is marked running, its run's results cleared and its attempts counted."""

    async def save(self, record: JobRecord) -> bool:
        """Write the record if its owner (None: nobody) still holds it; whether it did."""

    async def heartbeat(self, owner: str, job_ids: list[str], lease_s: float) -> dict[str, bool]:
        """Renew `owner`'s leases on these jobs: for each still held, whether a cancel was
        asked for. A job missing from the answer is no longer this owner's."""

    async def request_cancel(self, job_id: str, finished: float) -> bool:
        """Cancel a queued job at once (True), or flag a running one for its owner (False)."""

    async def release(self, owner: str, job_ids: list[str]) -> None:
        """Give up `owner`'s leases on these jobs at once (an orderly stop), so that another
        runner takes them over without waiting for expiry; the run is not counted."""

    async def expire(self, finished_before: float) -> list[str]:
        """Delete jobs that ended before this time, files included; their ids."""

    async def close(self) -> None: ...


COLUMNS = (
    "id",
    "kind",
    "state",
    "created",
    "updated",
    "fields",
    "files",
    "brief",
    "error",
    "media_type",
    "audio_bytes",
    "duration_s",
    "sample_rate",
    "channels",
    "attempts",
    "webhook_url",
    "finished",
    "client",
    "owner",
    "cancel_requested",
    "analysis",
)
_LIST = ", ".join(COLUMNS)


def schema(float_type: str) -> str:
    """The table, in the types both databases share (`float_type`: an 8-byte float)."""
    return f"""
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
    created {float_type} NOT NULL, updated {float_type} NOT NULL, fields TEXT NOT NULL,
    files TEXT NOT NULL, brief TEXT, error TEXT, media_type TEXT, audio_bytes BIGINT NOT NULL,
    duration_s {float_type}, sample_rate INTEGER, channels INTEGER, attempts INTEGER NOT NULL,
    webhook_url TEXT, finished {float_type}, client TEXT, owner TEXT,
    lease_until {float_type} NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,
    analysis TEXT
)"""


LATER_COLUMNS = {"analysis": "TEXT"}
"""Columns added since the shared (PostgreSQL) store's first release: added at open."""


INDEXES = (
    "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created)",
    "CREATE INDEX IF NOT EXISTS jobs_by_client ON jobs (client, created)",
    "CREATE INDEX IF NOT EXISTS jobs_by_finished ON jobs (finished)",
)


def sql_states(states: tuple[JobState, ...]) -> str:
    """States as an SQL list, for `state IN (...)`."""
    return ", ".join(f"'{s.value}'" for s in states)


class SqlJobStore(ABC):
    """The statements, written once with `?` placeholders, and the folder layout; a dialect
    says how to run them and what the database's clock is."""

    NOW: str
    """SQL for the database's time, in seconds since the epoch."""
    SKIP_LOCKED: str = ""
    """Row locking for the claim's pick, where the database has it."""

    def __init__(self, root: Path) -> None:
        self._root = root

    @abstractmethod
    async def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in its own transaction; the rows it returned."""

    @abstractmethod
    async def _count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement in its own transaction; the rows it changed."""

    def folder(self, job_id: str) -> Path:
        return self._root / job_id

    def audio_path(self, record: JobRecord) -> Path:
        return self.folder(record.id) / f"audio.{record.attempts}"

    async def create(self, record: JobRecord) -> None:
        values = _values(record)
        marks = ", ".join("?" * len(values))
        await self._count(f"INSERT INTO jobs ({_LIST}) VALUES ({marks})", values)

    async def get(self, job_id: str) -> JobRecord | None:
        rows = await self._rows(f"SELECT {_LIST} FROM jobs WHERE id = ?", (job_id,))
        return _record(rows[0]) if rows else None

    async def page(
        self, client: str | None, limit: int, after: str | None, state: JobState | None
    ) -> list[JobRecord]:
        where, params = ["1 = 1"], []
        if client is not None:
            where.append("client = ?")
            params.append(client)
        if state is not None:
            where.append("state = ?")
            params.append(state.value)
        if after is not None:
            where.append("(created, id) < (SELECT created, id FROM jobs WHERE id = ?)")
            params.append(after)
        rows = await self._rows(
            f"SELECT {_LIST} FROM jobs WHERE {' AND '.join(where)} "
            "ORDER BY created DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [_record(row) for row in rows]

    async def queued(self) -> int:
        rows = await self._rows("SELECT count(*) FROM jobs WHERE state = 'queued'")
        return int(rows[0][0])

    async def claim(self, owner: str, lease_s: float) -> JobRecord | None:
        claimable = (
            f"state = 'queued' OR (state IN ({sql_states(RUNNING)}) AND lease_until < {self.NOW})"
        )
        rows = await self._rows(
            "UPDATE jobs SET owner = ?, lease_until = "
            f"{self.NOW} + ?, attempts = attempts + 1, updated = {self.NOW}, "
            "state = CASE kind WHEN 'generate' THEN 'describing' ELSE 'composing' END, "
            "brief = NULL, media_type = NULL, audio_bytes = 0 "
            f"WHERE id = (SELECT id FROM jobs WHERE {claimable} "
            f"ORDER BY created, id LIMIT 1{self.SKIP_LOCKED}) RETURNING {_LIST}",
            (owner, lease_s),
        )
        return _record(rows[0]) if rows else None

    async def save(self, record: JobRecord) -> bool:
        record.updated = time.time()
        by_column = dict(zip(COLUMNS, _values(record), strict=True))
        saved = [c for c in COLUMNS[1:] if c != "cancel_requested"]  # a cancel is the API's
        assignments = ", ".join(f"{c} = ?" for c in saved)
        values = tuple(by_column[c] for c in saved)
        if record.owner is None:
            fence, params = "owner IS NULL", (*values, record.id)
        else:
            fence, params = "owner = ?", (*values, record.id, record.owner)
        changed = await self._count(
            f"UPDATE jobs SET {assignments} WHERE id = ? AND {fence}", params
        )
        return changed == 1

    async def heartbeat(self, owner: str, job_ids: list[str], lease_s: float) -> dict[str, bool]:
        if not job_ids:
            return {}
        marks = ", ".join("?" * len(job_ids))
        rows = await self._rows(
            f"UPDATE jobs SET lease_until = {self.NOW} + ? WHERE owner = ? AND id IN ({marks}) "
            f"AND state IN ({sql_states(RUNNING)}) RETURNING id, cancel_requested",
            (lease_s, owner, *job_ids),
        )
        return {job_id: bool(flag) for job_id, flag in rows}

    async def request_cancel(self, job_id: str, finished: float) -> bool:
        cancelled = await self._count(
            "UPDATE jobs SET state = 'cancelled', finished = ?, updated = ? "
            "WHERE id = ? AND state = 'queued'",
            (finished, finished, job_id),
        )
        if cancelled:
            return True
        await self._count(
            "UPDATE jobs SET cancel_requested = 1 "
            f"WHERE id = ? AND state IN ({sql_states(RUNNING)})",
            (job_id,),
        )
        return False

    async def release(self, owner: str, job_ids: list[str]) -> None:
        if not job_ids:
            return
        marks = ", ".join("?" * len(job_ids))
        await self._count(
            "UPDATE jobs SET lease_until = 0, attempts = attempts - 1 "
            f"WHERE owner = ? AND id IN ({marks}) AND state IN ({sql_states(RUNNING)})",
            (owner, *job_ids),
        )

    async def expire(self, finished_before: float) -> list[str]:
        rows = await self._rows(
            "DELETE FROM jobs WHERE finished IS NOT NULL AND finished < ? RETURNING id",
            (finished_before,),
        )
        ids = [row[0] for row in rows]
        for job_id in ids:  # off the event loop: a job folder can hold hundreds of MB
            await anyio.to_thread.run_sync(_remove, self.folder(job_id))
        return ids


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _values(r: JobRecord) -> tuple[Any, ...]:
    return (
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
        r.client,
        r.owner,
        int(r.cancel_requested),
        json.dumps(r.analysis) if r.analysis is not None else None,
    )


def _record(row: tuple[Any, ...]) -> JobRecord:
    (id_, kind, state, created, updated, fields, files, brief, error, media_type, audio_bytes,
     duration_s, sample_rate, channels, attempts, webhook_url, finished, client, owner,
     cancel_requested, analysis) = row  # fmt: skip
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
        client=client,
        owner=owner,
        cancel_requested=bool(cancel_requested),
        analysis=json.loads(analysis) if analysis else None,
    )
