"""Both job stores, SQLite and a real PostgreSQL, held to one contract: claims take each job
once, oldest first; a lease that runs out passes the job on and fences its old runner out;
cancels reach the owner through its heartbeat; pages are newest first and per client."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.jobs.model import JobState
from gateway.jobs.postgres_store import PostgresJobStore
from gateway.jobs.sqlite_store import SqliteJobStore
from gateway.jobs.store import JobRecord, JobStore, schema
from tests.postgres import PostgresServer
from weavewave_common.errors import ServiceUnavailable


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[JobStore]:
    opened: JobStore
    if request.param == "sqlite":
        opened = SqliteJobStore(tmp_path)
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"store_{uuid.uuid4().hex[:8]}")
        opened = await PostgresJobStore.open(url, tmp_path, max_connections=8)
    yield opened
    await opened.close()


def job(created: float, kind: str = "compose", client: str | None = None) -> JobRecord:
    return JobRecord(
        id=uuid.uuid4().hex,
        kind=kind,
        state=JobState.QUEUED,
        created=created,
        updated=created,
        fields={"description": "a drone"},
        client=client,
    )


_ticks = itertools.count()  # distinct creation times, in creation order


async def queue(store: JobStore, count: int, **kw: str) -> list[JobRecord]:
    records = [job(1000.0 + next(_ticks), **kw) for _ in range(count)]
    for record in records:
        await store.create(record)
    return records


async def test_concurrent_claims_take_each_job_once_oldest_first(store: JobStore) -> None:
    records = await queue(store, 12)
    claims = await asyncio.gather(*(store.claim(f"runner-{n % 3}", 30) for n in range(16)))
    taken = [c.id for c in claims if c is not None]
    assert sorted(taken) == sorted(r.id for r in records)  # each once, none twice
    assert claims.count(None) == 4
    first = next(c for c in claims if c is not None)
    assert first.state is JobState.COMPOSING and first.attempts == 1 and first.owner
    assert await store.queued() == 0


async def test_claims_come_oldest_first(store: JobStore) -> None:
    records = await queue(store, 3)
    order = [await store.claim("runner", 30) for _ in records]
    assert [c.id for c in order if c] == [r.id for r in records]


async def test_an_expired_lease_passes_the_job_on_and_fences_the_old_runner(
    store: JobStore,
) -> None:
    (record,) = await queue(store, 1, kind="generate")
    first = await store.claim("first", 0.3)
    assert first is not None and first.state is JobState.DESCRIBING
    assert await store.claim("second", 30) is None  # held
    assert await store.save(first)  # the owner writes while it holds the lease
    await asyncio.sleep(0.5)
    second = await store.claim("second", 30)
    assert second is not None and second.id == record.id and second.attempts == 2
    first.audio_bytes = 123
    assert not await store.save(first)  # the stalled runner can write nothing more
    assert await store.heartbeat("first", [record.id], 30) == {}
    assert await store.heartbeat("second", [record.id], 30) == {record.id: False}
    current = await store.get(record.id)
    assert current is not None and current.owner == "second" and current.audio_bytes == 0


async def test_a_heartbeat_keeps_the_lease(store: JobStore) -> None:
    (record,) = await queue(store, 1)
    assert await store.claim("owner", 0.4) is not None
    for _ in range(4):
        await asyncio.sleep(0.2)
        assert await store.heartbeat("owner", [record.id], 0.4) == {record.id: False}
    assert await store.claim("thief", 30) is None


async def test_cancel_is_immediate_when_queued_and_a_flag_when_running(store: JobStore) -> None:
    waiting, running = await queue(store, 2)
    claimed = await store.claim("owner", 30)
    assert claimed is not None and claimed.id == waiting.id
    assert await store.request_cancel(running.id, time.time())  # queued: cancelled at once
    gone = await store.get(running.id)
    assert gone is not None and gone.state is JobState.CANCELLED and gone.finished
    assert not await store.request_cancel(waiting.id, time.time())  # running: flagged
    assert await store.heartbeat("owner", [waiting.id], 30) == {waiting.id: True}


async def test_release_hands_the_job_over_at_once_uncounted(store: JobStore) -> None:
    (record,) = await queue(store, 1)
    assert await store.claim("stopping", 30) is not None
    await store.release("stopping", [record.id])
    again = await store.claim("next", 30)
    assert again is not None and again.id == record.id and again.attempts == 1


async def test_pages_are_newest_first_and_per_client(store: JobStore) -> None:
    mine = await queue(store, 5, client="alice")
    await queue(store, 2, client="bob")
    first = await store.page("alice", 3, None, None)
    assert [r.id for r in first] == [r.id for r in reversed(mine)][:3]
    rest = await store.page("alice", 3, first[-1].id, None)
    assert [r.id for r in rest] == [mine[1].id, mine[0].id]
    assert len(await store.page(None, 100, None, None)) == 7  # keys off: all are shared
    await store.claim("owner", 30)
    composing = await store.page("alice", 10, None, JobState.COMPOSING)
    assert [r.id for r in composing] == [mine[0].id]


async def test_expiry_deletes_rows_and_folders(store: JobStore) -> None:
    old, young = await queue(store, 2)
    for record, finished in ((old, 100.0), (young, time.time())):
        store.folder(record.id).mkdir(parents=True)
        record.state, record.finished = JobState.DONE, finished
        assert await store.save(record)
    assert await store.expire(time.time() - 60) == [old.id]
    assert await store.get(old.id) is None and not store.folder(old.id).exists()
    assert await store.get(young.id) is not None


async def test_a_sqlite_restart_frees_the_leases_of_the_process_that_died(
    tmp_path: Path,
) -> None:
    died = SqliteJobStore(tmp_path)
    await queue(died, 1)
    claimed = await died.claim("died", 3600)
    await died.close()
    restarted = SqliteJobStore(tmp_path)  # one process owns the file: its leases are stale
    reclaimed = await restarted.claim("restarted", 3600)
    await restarted.close()
    assert claimed is not None and reclaimed is not None
    assert reclaimed.id == claimed.id and reclaimed.attempts == 2


async def test_a_database_that_goes_away_is_a_503_not_a_500(tmp_path: Path) -> None:
    from tests.postgres import postgres_server

    with postgres_server() as server:
        store = await PostgresJobStore.open(
            server.create_database("going"), tmp_path, max_connections=2
        )
        (record,) = await queue(store, 1)
    # the server has stopped: its connections are gone, and no new one can be made
    with pytest.raises(ServiceUnavailable) as refused:
        await store.get(record.id)
    assert refused.value.code == "jobs_unavailable" and refused.value.retry_after_s
    await store.close()


async def test_a_done_jobs_analysis_is_kept(store: JobStore) -> None:
    (record,) = await queue(store, 1)
    claimed = await store.claim("runner", 30)
    assert claimed is not None and claimed.analysis is None
    claimed.analysis = {"tempo": {"bpm": 120.0}, "flaws": {"silent": False}}
    claimed.state = JobState.DONE
    assert await store.save(claimed)
    kept = await store.get(record.id)
    assert kept is not None and kept.analysis == claimed.analysis


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_store_from_before_analyses_gains_the_column(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A jobs file (or database) made before the judge opens, its jobs keep, and analyses
    save; before, the new column was only in CREATE TABLE, which an existing table skips."""
    old_schema = schema("REAL" if kind == "sqlite" else "DOUBLE PRECISION")
    old_schema = old_schema.replace(",\n    analysis TEXT", "")
    assert "analysis" not in old_schema
    store: JobStore
    if kind == "sqlite":
        with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
            db.execute(old_schema)
        store = SqliteJobStore(tmp_path)
    else:
        import psycopg

        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.create_database(f"old_{uuid.uuid4().hex[:8]}")
        with psycopg.connect(url) as conn:
            conn.execute(old_schema)
        store = await PostgresJobStore.open(url, tmp_path, max_connections=2)
    try:
        (record,) = await queue(store, 1)
        claimed = await store.claim("runner", 30)
        assert claimed is not None
        claimed.analysis = {"flaws": {"silent": True}}
        assert await store.save(claimed)
        kept = await store.get(record.id)
        assert kept is not None and kept.analysis == {"flaws": {"silent": True}}
    finally:
        await store.close()
