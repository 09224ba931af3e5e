"""A job whose submission is cancelled mid-copy (the server stopping) is never run: its client
never learned its id, so it must not be recovered and run at the next start."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path
from typing import cast

import pytest

from gateway.generate import Generator
from gateway.jobs.runner import JobRunner
from gateway.jobs.sqlite_store import SqliteJobStore
from gateway.uploads import FormFile, ParsedForm


def jobs_in(folder: Path) -> int:
    with sqlite3.connect(folder / "jobs.sqlite3") as db:
        count: int = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
    return count


def test_a_submission_cancelled_during_the_copy_leaves_no_job_to_run(tmp_path: Path) -> None:
    store = SqliteJobStore(tmp_path)
    size = 64 * 1024 * 1024
    video = FormFile(
        file=io.BytesIO(bytes(size)),
        filename="take.mp4",
        size=size,
        field="video",
        media_type="video/mp4",
    )
    form = ParsedForm(fields={"description": "a drone"}, files=[video])

    async def scenario() -> None:
        runner = JobRunner(
            store, cast(Generator, None), workers=0, max_queued=5, ttl_s=60
        )  # no workers: only the submission runs
        submission = asyncio.create_task(runner.submit(form, "compose"))
        await asyncio.sleep(0.01)  # the copy is under way in its thread
        submission.cancel()
        with pytest.raises(asyncio.CancelledError):
            await submission
        assert await store.queued() == 0
        # nothing for a runner (here, or at the next start) to claim and run
        assert await store.claim("next-start", 30) is None
        await store.close()

    asyncio.run(scenario())
    assert jobs_in(tmp_path) <= 1
    assert not any(tmp_path.glob("*/inputs"))  # no orphaned inputs either
