"""Runs jobs in the background through the same `Generator` as `/generate`.

A fixed number of workers take queued jobs in order; each job's audio is written to its folder
as it streams from the composer, so it can be played while it is still being written. Jobs that
were running or queued when the service stopped are queued again at start-up (from their saved
inputs) or, after `MAX_ATTEMPTS`, failed with the reason. Ended jobs expire after the TTL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

import anyio

from gateway.generate import AudioStream, Generator
from gateway.jobs.model import JobState
from gateway.jobs.store import JobRecord, JobStore, StoredFile
from gateway.jobs.webhook import Webhooks
from gateway.protocol import BRIEF_HEADER
from gateway.uploads import ParsedForm, Upload
from weavewave_common.errors import ApiError, TooManyRequests
from weavewave_common.request_id import bind_request_id
from weavewave_common.threads import run_to_the_end

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
"""Runs of one job before a restart during it counts as a failure (a job that kills its host
must not be retried forever)."""
SAVE_EVERY_S = 0.5


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        generator: Generator,
        *,
        workers: int,
        max_queued: int,
        ttl_s: float,
        webhooks: Webhooks | None = None,
    ) -> None:
        self._store = store
        self._generator = generator
        self._workers = workers
        self._max_queued = max_queued
        self._ttl_s = ttl_s
        self._webhooks = webhooks
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancelling: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for record in self._store.unfinished():
            self._recover(record)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        self._tasks.append(asyncio.create_task(self._expire_forever()))

    async def stop(self) -> None:
        """Stop the workers; running jobs stay unfinished in the store (recovered next start)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task

    async def submit(self, form: ParsedForm, kind: str) -> JobRecord:
        """Save the inputs and queue the job (429 when the queue is full). The inputs (up to
        hundreds of MB) are copied in a worker thread: the event loop serves on meanwhile.
        Submissions copying at once may each pass the check: the queue can exceed its bound
        by at most the gateway's capacity (`GATEWAY_MAX_CONCURRENT`)."""
        if self._queue.qsize() >= self._max_queued:
            raise TooManyRequests("The job queue is full; retry later.", retry_after_s=30)
        record = self._new_record(form, kind)
        try:
            await run_to_the_end(self._save_inputs, form, record)
        except asyncio.CancelledError:
            # stopping mid-copy: the copy has ended; undo it (nobody was told this job's id)
            if self._store.get(record.id) is not None:
                self._finish(record, JobState.CANCELLED, None)
            raise
        self._queue.put_nowait(record.id)
        return record

    def _new_record(self, form: ParsedForm, kind: str) -> JobRecord:
        now = time.time()
        fields = {k: v for k, v in form.fields.items() if k != "webhook_url"}
        return JobRecord(
            id=uuid.uuid4().hex,
            kind=kind,
            state=JobState.QUEUED,
            created=now,
            updated=now,
            fields=fields,
            webhook_url=form.fields.get("webhook_url") or None,
        )

    def _save_inputs(self, form: ParsedForm, record: JobRecord) -> None:
        inputs = self._store.folder(record.id) / "inputs"
        try:  # the inputs first: a row is only ever written for a job whose inputs are whole
            inputs.mkdir(parents=True)
            for number, upload in enumerate(form.files):
                path = inputs / str(number)
                upload.file.seek(0)
                with path.open("wb") as out:
                    shutil.copyfileobj(upload.file, out)
                record.files.append(
                    StoredFile(
                        upload.field, upload.filename, str(path), upload.media_type, upload.size
                    )
                )
            self._store.create(record)
        except BaseException:
            shutil.rmtree(self._store.folder(record.id), ignore_errors=True)
            raise

    async def cancel(self, record: JobRecord) -> None:
        """Cancel a queued or running job and wait (briefly) until it has stopped; its composer
        stream is closed, so the composer stops generating for it."""
        if record.state.finished:
            return
        task = self._running.get(record.id)
        if task is None:
            self._finish(record, JobState.CANCELLED, None)
            return
        self._cancelling.add(record.id)
        task.cancel()
        await asyncio.wait({task}, timeout=10)

    def _recover(self, record: JobRecord) -> None:
        inputs_there = all(Path(f.path).exists() for f in record.files)
        if record.attempts >= MAX_ATTEMPTS or not inputs_there:
            reason = "its inputs are gone" if not inputs_there else "it was interrupted twice"
            error = {"code": "interrupted", "message": f"The service restarted; {reason}."}
            self._finish(record, JobState.FAILED, error)
            return
        record.state, record.audio_bytes, record.brief = JobState.QUEUED, 0, None
        record.media_type = None  # the stream of the run that was cut is gone
        self._store.save(record)
        self._queue.put_nowait(record.id)
        logger.info("job %s was interrupted by a restart; queued again", record.id)

    async def _work(self) -> None:
        while True:
            job_id = await self._queue.get()
            record = self._store.get(job_id)
            if record is None or record.state is not JobState.QUEUED:
                continue  # cancelled while queued, or expired
            # Its own task, so that DELETE can cancel the job alone; a stopping worker cancels
            # the job it awaits too (asyncio passes the cancellation on) and waits for it.
            task = asyncio.create_task(self._run(record))
            self._running[job_id] = task
            try:
                await task
            finally:
                self._running.pop(job_id, None)

    async def _run(self, record: JobRecord) -> None:
        bind_request_id(f"job-{record.id}")  # this task's own context: its logs carry the job
        record.attempts += 1
        record.state = JobState.DESCRIBING if record.kind == "generate" else JobState.COMPOSING
        self._store.save(record)
        form = _form_of(record)
        try:
            try:
                stream = await self._generator.generate(form, f"job-{record.id}")
            except BaseException:
                form.close()
                raise
            try:
                # the file first: a job shown as composing always has its audio to follow
                path = self._store.audio_path(record.id)
                out = await anyio.to_thread.run_sync(path.open, "wb")
                try:
                    self._started(record, stream)
                    await self._write(record, stream, out)
                finally:
                    out.close()
            finally:
                await stream.close()
            self._finish(record, JobState.DONE, None)
        except asyncio.CancelledError:
            if record.id in self._cancelling:
                self._cancelling.discard(record.id)
                self._finish(record, JobState.CANCELLED, None)
                return
            raise  # shutting down: the job stays unfinished and is recovered at start-up
        except ApiError as exc:
            self._finish(record, JobState.FAILED, {"code": exc.code, "message": exc.message})
        except Exception:
            logger.exception("job %s failed", record.id)
            message = "The job failed unexpectedly; it has been logged."
            self._finish(record, JobState.FAILED, {"code": "internal_error", "message": message})

    def _started(self, record: JobRecord, stream: AudioStream) -> None:
        headers = {k.lower(): v for k, v in stream.headers.items()}
        if BRIEF_HEADER.lower() in headers:
            record.brief = json.loads(unquote(headers[BRIEF_HEADER.lower()]))
        record.media_type = stream.media_type
        record.duration_s = float(headers.get("x-duration", 0) or 0) or None
        record.sample_rate = int(headers.get("x-sample-rate", 0) or 0) or None
        record.channels = int(headers.get("x-channels", 0) or 0) or None
        record.state = JobState.COMPOSING
        self._store.save(record)

    async def _write(self, record: JobRecord, stream: AudioStream, out: BinaryIO) -> None:
        """The audio to the job's file as it arrives (file and store writes off the loop)."""
        saved = time.monotonic()
        async for chunk in stream.body:
            await run_to_the_end(_append, out, chunk)
            record.audio_bytes += len(chunk)
            if time.monotonic() - saved > SAVE_EVERY_S:
                await anyio.to_thread.run_sync(self._store.save, record)
                saved = time.monotonic()

    def _finish(self, record: JobRecord, state: JobState, error: dict[str, str] | None) -> None:
        record.state, record.error, record.finished = state, error, time.time()
        if state is not JobState.DONE:
            self._store.audio_path(record.id).unlink(missing_ok=True)
            record.audio_bytes = 0
        self._store.save(record)
        logger.info("job %s %s", record.id, state.value)
        if self._webhooks is not None and record.webhook_url:
            self._webhooks.notify(record)

    async def _expire_forever(self) -> None:
        while True:
            expired = await anyio.to_thread.run_sync(self._store.expire, time.time() - self._ttl_s)
            if expired:
                logger.info("expired %d finished jobs", len(expired))
            await asyncio.sleep(min(60.0, max(self._ttl_s / 4, 0.5)))


def _append(out: BinaryIO, chunk: bytes) -> None:
    out.write(chunk)
    out.flush()  # readers follow the file as it grows


def _form_of(record: JobRecord) -> ParsedForm:
    """The job's saved inputs as the form `Generator` takes (files opened from its folder)."""
    files = [
        Upload(f.field, f.filename, Path(f.path).open("rb"), f.size, f.media_type)  # noqa: SIM115
        for f in record.files
    ]
    return ParsedForm(fields=dict(record.fields), files=files)
