"""Jobs' inputs: a job whose submission is cancelled mid-copy (the server stopping) is never
run (its client never learned its id, so it must not be recovered and run at the next start),
and an ended job's inputs leave at once."""

from __future__ import annotations

import asyncio
import errno
import io
import logging
import sqlite3
from pathlib import Path
from typing import cast

import httpx
import pytest

from gateway import metrics
from gateway.composers import Composers
from gateway.generate import Generator
from gateway.jobs.model import JobState
from gateway.jobs.runner import JobRunner
from gateway.jobs.sqlite_store import SqliteJobStore
from gateway.jobs.store import JobRecord
from gateway.request import DurationLimits, MusicRequests
from gateway.uploads import FormFile, ParsedForm, UploadLimits
from gateway.upstream import CaptionerClient, ComposerClient
from tests.gateway.upstreams import pool, streamed
from weavewave_common.errors import InsufficientStorage
from weavewave_common.protocol import ComposerCard, ComposerCards


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


def models_answer(max_duration_s: float) -> dict[str, object]:
    """A MusicGen composer's `/v1/models` answer, with this longest clip."""
    card = ComposerCard(
        name="m",
        backend="transformers",
        sample_rate=32000,
        channels=1,
        supports_melody=False,
        max_duration_s=max_duration_s,
        loaded=True,
    )
    return ComposerCards(models=[card]).model_dump(mode="json")


def test_an_ended_jobs_inputs_leave_at_once(tmp_path: Path) -> None:
    """Before: a failed or cancelled job's inputs stayed on disk for its whole TTL."""
    card = models_answer(max_duration_s=5)
    composer = ComposerClient(pool(lambda _: httpx.Response(200, json=card)), 30)
    requests = MusicRequests(Composers({"m": composer}), DurationLimits(10, 120))
    captioner = CaptionerClient(pool(lambda _: httpx.Response(503)), 0, 30)
    generator = Generator(captioner, requests, UploadLimits())

    def form(duration: str) -> ParsedForm:
        clip = FormFile(file=io.BytesIO(bytes(4096)), filename="a.wav", size=4096, field="audio")
        return ParsedForm(fields={"description": "a drone", "duration": duration}, files=[clip])

    async def scenario() -> None:
        store = SqliteJobStore(tmp_path)
        idle = JobRunner(store, generator, workers=0, max_queued=5, ttl_s=60)
        queued = await idle.submit(form("2"), "compose")
        assert (store.folder(queued.id) / "inputs").exists()
        await idle.cancel(queued)  # cancelled while queued
        assert not (store.folder(queued.id) / "inputs").exists()
        runner = JobRunner(store, generator, workers=1, max_queued=5, ttl_s=60, poll_s=0.05)
        refused = await runner.submit(form("30"), "compose")  # over the composer's 5 s
        await runner.start()
        while (current := await store.get(refused.id)) is None or not current.state.finished:
            await asyncio.sleep(0.05)
        await runner.stop()
        assert current.state is JobState.FAILED and current.error is not None
        assert current.error["code"] == "duration_out_of_range"
        assert not (store.folder(refused.id) / "inputs").exists()
        await store.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def composer_that(*answers: str) -> ComposerClient:
    """A composer whose compose calls answer, in turn: `breaks` (a stream cut after its
    first bytes, as when the composer dies) or `serves` (a whole WAV-ish stream)."""
    card = models_answer(max_duration_s=30)
    left = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json=card)
        answer = left.pop(0) if len(left) > 1 else left[0]
        response = streamed([b"RIFF", b"more"], fail=answer == "breaks")
        response.headers["content-type"] = "audio/wav"
        return response

    return ComposerClient(pool(handle), 30)


def run_one_job(tmp_path: Path, composer: ComposerClient) -> JobRecord:
    requests = MusicRequests(Composers({"m": composer}), DurationLimits(10, 120))
    captioner = CaptionerClient(pool(lambda _: httpx.Response(503)), 0, 30)
    generator = Generator(captioner, requests, UploadLimits())

    async def scenario() -> JobRecord:
        store = SqliteJobStore(tmp_path)
        runner = JobRunner(
            store, generator, workers=1, max_queued=5, ttl_s=60, poll_s=0.05, upstream_retry_s=0
        )
        form = ParsedForm(fields={"description": "a drone", "duration": "2"})
        job = await runner.submit(form, "compose")
        await runner.start()
        while (current := await store.get(job.id)) is None or not current.state.finished:
            await asyncio.sleep(0.05)
        await runner.stop()
        await store.close()
        return current

    return asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_composer_that_dies_mid_job_is_said_as_such_and_the_job_runs_again(
    tmp_path: Path,
) -> None:
    """Before: the broken stream failed the job at once as `internal_error`."""
    retried = run_one_job(tmp_path / "once", composer_that("breaks", "serves"))
    assert retried.state is JobState.DONE and retried.attempts == 2
    twice = run_one_job(tmp_path / "twice", composer_that("breaks"))
    assert twice.state is JobState.FAILED and twice.error is not None
    assert twice.error["code"] == "composer_unavailable"
    assert "mid-stream" in twice.error["message"]


def disk_full(*_: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_said_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: a full jobs disk was a 500 on submission. (The fault is injected: no disk here
    can be filled on cue.)"""
    store = SqliteJobStore(tmp_path)
    runner = JobRunner(store, cast(Generator, None), workers=0, max_queued=5, ttl_s=60)
    clip = FormFile(file=io.BytesIO(bytes(64)), filename="a.wav", size=64, field="audio")
    monkeypatch.setattr("gateway.jobs.runner.shutil.copyfileobj", disk_full)
    with pytest.raises(InsufficientStorage) as refused:
        asyncio.run(runner.submit(ParsedForm(fields={"description": "x"}, files=[clip]), "c"))
    assert refused.value.status == 507 and refused.value.code == "disk_full"
    assert not any(tmp_path.glob("*/inputs"))
    asyncio.run(store.close())


def test_a_disk_that_fills_while_composing_fails_the_job_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("gateway.jobs.runner._append", disk_full)
    failed = metrics.JOBS_ENDED.labels("failed")._value.get()
    with caplog.at_level(logging.INFO, logger="gateway.jobs.runner"):
        job = run_one_job(tmp_path, composer_that("serves"))
    ended = [r.getMessage() for r in caplog.records if "failed (disk_full) after" in r.getMessage()]
    assert len(ended) == 1  # one summary line for the job: how it ended, why, how long
    assert job.state is JobState.FAILED and job.error is not None
    assert job.error["code"] == "disk_full"
    assert metrics.JOBS_ENDED.labels("failed")._value.get() == failed + 1  # counted by state
