"""A job whose submission is cancelled mid-copy (the server stopping) is never run: its client
never learned its id, so it must not be recovered and run at the next start."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import time
from pathlib import Path
from typing import cast

import pytest

from gateway.generate import Generator
from gateway.jobs.runner import JobRunner
from gateway.jobs.store import SqliteJobStore
from gateway.uploads import ParsedForm, Upload


def jobs_in(folder: Path) -> int:
    with sqlite3.connect(folder / "jobs.sqlite3") as db:
        count: int = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    return count


def test_a_submission_cancelled_during_the_copy_leaves_no_job_to_run(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path)
    size = 64 * 1024 * 1024
    video = Upload("video", "take.mp4", io.BytesIO(bytes(size)), size, "video/mp4")
    form = ParsedForm(fields={"description": "a drone"}, files=[video])

    async def scenario() -> int:
        runner = JobRunner(
            store, cast(Generator, None), workers=0, max_queued=5, ttl_s=60
        )  # no workers: only the submission runs
        submission = asyncio.create_task(runner.submit(form, "compose"))
        await asyncio.sleep(0.01)  # the copy is under way in its thread
        submission.cancel()
        with pytest.raises(asyncio.CancelledError):
            await submission
        return runner._queue.qsize()

    assert asyncio.run(scenario()) == 0
    deadline = time.monotonic() + 10  # the copy's thread outlives the cancellation: let it end
    while not jobs_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert jobs_in(tmp_path) <= 1
    assert store.unfinished() == []  # nothing for the next start to recover and run
    store.close()
