"""Runs jobs in the background through the same `Generator` as `/generate`.

A fixed number of workers claim jobs from the store, oldest first, each holding its job with a
lease that a heartbeat renews (and that carries a cancel asked for on any replica back here).
Each job's audio is written to its folder as it streams from the composer, so it can be played
while it is still being written. A job whose runner died is claimed again once its lease has
run out (at once after an embedded single-process restart); after `MAX_ATTEMPTS` runs it fails
with the reason. An orderly stop gives its leases back. Ended jobs expire after the TTL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import socket
import time
import uuid
from contextlib import suppress
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

import anyio
import httpx

from gateway import metrics
from gateway.generate import Generator
from gateway.jobs.model import JobForm, JobState
from gateway.jobs.store import JobRecord, JobStore, StoredFile
from gateway.jobs.webhook import Webhooks
from gateway.judge.measure import Asked
from gateway.judge.service import Judge
from gateway.protocol import BRIEF_HEADER
from gateway.request import Entry
from gateway.uploads import FormFile, ParsedForm
from weavewave_common.errors import ApiError, InsufficientStorage, TooManyRequests, no_space
from weavewave_common.request_id import bind_request_id
from weavewave_common.streams import AudioStream
from weavewave_common.threads import complete, run_to_the_end

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 2
"""Runs of one job before a runner dying during it counts as a failure (a job that kills its
host must not be retried forever)."""
SAVE_EVERY_S = 0.5
CANCEL_WAIT_S = 10.0


UPSTREAM_RETRY_S = 5.0
"""How long a job whose composer died mid-stream waits before it is queued again."""


class UpstreamLost(ApiError):
    """The composer's stream broke mid-way (the composer died or was cut off)."""

    status, code = 502, "composer_unavailable"


class LeaseLost(Exception):
    """Another runner holds the job now: this one must write nothing more for it."""


def runner_name() -> str:
    """Unique per process and start: a restarted replica is a new owner."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


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
        lease_s: float = 30.0,
        poll_s: float = 1.0,
        upstream_retry_s: float = UPSTREAM_RETRY_S,
        judge: Judge | None = None,
    ) -> None:
        self._store = store
        self._judge = judge
        self._generator = generator
        self._workers = workers
        self._max_queued = max_queued
        self._ttl_s = ttl_s
        self._webhooks = webhooks
        self._lease_s = lease_s
        self._poll_s = poll_s
        self._upstream_retry_s = upstream_retry_s
        self.owner = runner_name()
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancelling: set[str] = set()
        self._lost: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self._workers)]
        self._tasks.append(asyncio.create_task(self._heartbeat_forever()))
        self._tasks.append(asyncio.create_task(self._expire_forever()))

    async def stop(self) -> None:
        """Stop the workers and give back the leases of the jobs they ran: another runner (or
        this service's next start) takes them over from their saved inputs."""
        running = list(self._running)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        with suppress(Exception):  # the store may be what is failing: then leases expire
            await self._store.release(self.owner, running)

    async def submit(self, form: ParsedForm, kind: str, client: str | None = None) -> JobRecord:
        """Save the inputs and queue the job (429 when the queue is full). The inputs (up to
        hundreds of MB) are copied in a worker thread: the event loop serves on meanwhile.
        Submissions copying at once may each pass the check: the queue can exceed its bound
        by at most the gateway's capacity (`GATEWAY_MAX_CONCURRENT`) per replica."""
        if await self._store.queued() >= self._max_queued:
            raise TooManyRequests("The job queue is full; retry later.", retry_after_s=30)
        record = self._new_record(form, kind, client)
        try:
            # the inputs first: a row is only ever written for a job whose inputs are whole
            await run_to_the_end(self._save_inputs, form, record)
            await complete(self._store.create(record))
        except asyncio.CancelledError:
            # stopping mid-submission: nobody was told this job's id, so it must never run
            await self._abandon(record)
            raise
        except BaseException:
            shutil.rmtree(self._store.folder(record.id), ignore_errors=True)
            raise
        self._wake.set()
        return record

    async def _abandon(self, record: JobRecord) -> None:
        if await self._store.get(record.id) is None:
            shutil.rmtree(self._store.folder(record.id), ignore_errors=True)
            return
        await self._store.request_cancel(record.id, time.time())

    def _new_record(self, form: ParsedForm, kind: str, client: str | None) -> JobRecord:
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
            client=client,
        )

    def _save_inputs(self, form: ParsedForm, record: JobRecord) -> None:
        inputs = self._store.folder(record.id) / "inputs"
        try:
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
        except OSError as exc:
            shutil.rmtree(self._store.folder(record.id), ignore_errors=True)
            if no_space(exc):
                raise InsufficientStorage(
                    "The jobs disk is full; retry later.", retry_after_s=60
                ) from exc
            raise
        except BaseException:
            shutil.rmtree(self._store.folder(record.id), ignore_errors=True)
            raise

    async def cancel(self, record: JobRecord) -> None:
        """Cancel a queued or running job, here or on another replica, and wait (briefly)
        until it has stopped; its composer stream is closed, so the composer stops too."""
        if record.state.finished:
            return
        if await self._store.request_cancel(record.id, time.time()):
            logger.info("job %s cancelled while queued", record.id)
            await self._drop_inputs(record.id)
            cancelled = await self._store.get(record.id)
            if cancelled is not None:
                self._notify(cancelled)
            return
        task = self._running.get(record.id)
        if task is not None:  # running here: no need to wait for the heartbeat
            self._cancelling.add(record.id)
            task.cancel()
        deadline = time.monotonic() + CANCEL_WAIT_S
        while time.monotonic() < deadline:
            current = await self._store.get(record.id)
            if current is None or current.state.finished:
                return
            await asyncio.sleep(min(0.1, self._poll_s))

    async def _work(self) -> None:
        while True:
            self._wake.clear()
            try:
                metrics.JOBS_QUEUED.set(await self._store.queued())
                record = await self._store.claim(self.owner, self._lease_s)
            except Exception:
                logger.exception("could not claim a job; trying again")
                record = None
            if record is None:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)
                continue
            # Its own task, so that a cancel can stop the job alone; a stopping worker cancels
            # the job it awaits too (asyncio passes the cancellation on) and waits for it.
            task = asyncio.create_task(self._run(record))
            self._running[record.id] = task
            try:
                await task
            finally:
                self._running.pop(record.id, None)
                self._cancelling.discard(record.id)
                self._lost.discard(record.id)

    async def _heartbeat_forever(self) -> None:
        """Renew the leases of the jobs running here; stop those cancelled elsewhere or taken
        over (this runner stalled past its lease)."""
        while True:
            await asyncio.sleep(min(self._lease_s / 3, self._poll_s))
            ids = list(self._running)
            try:
                held = await self._store.heartbeat(self.owner, ids, self._lease_s)
            except Exception:
                logger.exception("job leases could not be renewed; trying again")
                continue
            for job_id in ids:
                task = self._running.get(job_id)
                if task is None or task.done():
                    continue
                if job_id not in held:
                    logger.warning("job %s: lease lost, another runner has it", job_id)
                    self._lost.add(job_id)
                    task.cancel()
                elif held[job_id]:
                    self._cancelling.add(job_id)
                    task.cancel()

    def _unrunnable(self, record: JobRecord) -> str | None:
        if record.attempts > MAX_ATTEMPTS:
            return "it was interrupted twice"
        if not all(self._input_path(record, f).exists() for f in record.files):
            return "its inputs are gone"
        return None

    def _input_path(self, record: JobRecord, stored: StoredFile) -> Path:
        """Inputs by name in the job's folder, wherever the shared volume is mounted here."""
        return self._store.folder(record.id) / "inputs" / Path(stored.path).name

    async def _run(self, record: JobRecord) -> None:
        bind_request_id(f"job-{record.id}")  # this task's own context: its logs carry the job
        logger.info("job %s claimed by %s (run %d)", record.id, self.owner, record.attempts)
        try:
            await self._attempt(record)
        except LeaseLost:
            logger.warning("job %s: lease lost, another runner has it", record.id)
        except Exception:  # the store itself failed: its lease runs out, and it runs again
            logger.exception("job %s: its outcome could not be saved", record.id)

    async def _attempt(self, record: JobRecord) -> None:
        """One run of the job to its end; every write fenced by the lease (`LeaseLost`)."""
        try:
            if record.cancel_requested:
                await self._finish(record, JobState.CANCELLED, None)
                return
            reason = self._unrunnable(record)
            if reason is not None:
                error = {"code": "interrupted", "message": f"The service restarted; {reason}."}
                await self._finish(record, JobState.FAILED, error)
                return
            if record.attempts > 1:
                logger.info("job %s was interrupted; running it again", record.id)
            await self._generate(record)
            record.analysis = await self._measured(record)
            await self._finish(record, JobState.DONE, None)
        except asyncio.CancelledError:
            if record.id in self._lost:
                return  # its new runner owns the row and the folder now
            if record.id in self._cancelling:
                await self._finish(record, JobState.CANCELLED, None)
                return
            raise  # shutting down: the lease is given back, and the job runs again
        except LeaseLost:
            raise
        except UpstreamLost as exc:
            if record.attempts < MAX_ATTEMPTS:  # once more, from its saved inputs
                logger.warning("job %s: %s; queued again", record.id, exc.message)
                await self._retry_later(record)
                return
            await self._finish(record, JobState.FAILED, {"code": exc.code, "message": exc.message})
        except ApiError as exc:
            await self._finish(record, JobState.FAILED, {"code": exc.code, "message": exc.message})
        except Exception:
            logger.exception("job %s failed", record.id)
            message = "The job failed unexpectedly; it has been logged."
            error = {"code": "internal_error", "message": message}
            await self._finish(record, JobState.FAILED, error)

    async def _generate(self, record: JobRecord) -> None:
        form = self._form_of(record)
        try:
            request = await self._generator.requests.parse(form, Entry.GENERATE, JobForm)
            stream = await self._generator.generate(request, f"job-{record.id}")
        except BaseException:
            form.close()
            raise
        try:
            for earlier in range(1, record.attempts):  # cut runs' audio, if any was left
                self._store.audio_path(replace(record, attempts=earlier)).unlink(missing_ok=True)
            # the file first: a job shown as composing always has its audio to follow
            path = self._store.audio_path(record)
            out = await anyio.to_thread.run_sync(path.open, "wb")
            try:
                await self._started(record, stream)
                try:
                    await self._write(record, stream, out)
                except httpx.HTTPError as exc:
                    raise UpstreamLost(
                        f"The composer stopped mid-stream ({type(exc).__name__})."
                    ) from exc
            finally:
                out.close()
        finally:
            await stream.close()

    async def _measured(self, record: JobRecord) -> dict[str, Any] | None:
        """The judge's measures of the job's audio against its brief (tempo, key) and the
        length asked; None without a judge, or when the audio cannot be measured (logged: a
        judge's failure never fails the music)."""
        if self._judge is None:
            return None
        brief = record.brief or {}
        try:
            asked = Asked(
                tempo_bpm=brief.get("tempo_bpm"),
                key=brief.get("key"),
                duration_s=_seconds(record.fields.get("duration")),
            )
            with self._store.audio_path(record).open("rb") as audio:
                analysis = await self._judge.analyze(audio, f"job {record.id}", asked)
        except Exception:
            logger.warning("job %s: its audio could not be measured", record.id, exc_info=True)
            return None
        measured: dict[str, Any] = analysis.model_dump(mode="json")
        return measured

    async def _retry_later(self, record: JobRecord) -> None:
        """Queue the job again after `upstream_retry_s` (time for the composer to come back);
        a cancel meanwhile ends it."""
        try:
            await asyncio.sleep(self._upstream_retry_s)
        except asyncio.CancelledError:
            if record.id in self._cancelling:
                await self._finish(record, JobState.CANCELLED, None)
                return
            raise
        await self._requeue(record)

    async def _requeue(self, record: JobRecord) -> None:
        """Back in the queue (the run still counts): any runner claims it again."""
        self._store.audio_path(record).unlink(missing_ok=True)
        record.state, record.audio_bytes, record.media_type = JobState.QUEUED, 0, None
        await self._save(record)
        self._wake.set()

    async def _save(self, record: JobRecord) -> None:
        if not await self._store.save(record):
            raise LeaseLost(record.id)

    def _form_of(self, record: JobRecord) -> ParsedForm:
        """The job's saved inputs as the form `Generator` takes (files opened from its folder)."""
        files = [
            FormFile(
                file=self._input_path(record, f).open("rb"),  # noqa: SIM115 - the form closes it
                filename=f.filename,
                size=f.size,
                field=f.field,
                media_type=f.media_type,
            )
            for f in record.files
        ]
        return ParsedForm(fields=dict(record.fields), files=files)

    async def _started(self, record: JobRecord, stream: AudioStream) -> None:
        headers = {k.lower(): v for k, v in stream.headers.items()}
        if BRIEF_HEADER.lower() in headers:
            record.brief = json.loads(unquote(headers[BRIEF_HEADER.lower()]))
        record.media_type = stream.media_type
        record.duration_s = float(headers.get("x-duration", 0) or 0) or None
        record.sample_rate = int(headers.get("x-sample-rate", 0) or 0) or None
        record.channels = int(headers.get("x-channels", 0) or 0) or None
        record.state = JobState.COMPOSING
        await self._save(record)

    async def _write(self, record: JobRecord, stream: AudioStream, out: BinaryIO) -> None:
        """The audio to the job's file as it arrives (file and store writes off the loop)."""
        saved = time.monotonic()
        async for chunk in stream.body:
            try:
                await run_to_the_end(_append, out, chunk)
            except OSError as exc:
                if no_space(exc):
                    raise InsufficientStorage("The jobs disk filled up while composing.") from exc
                raise
            record.audio_bytes += len(chunk)
            if time.monotonic() - saved > SAVE_EVERY_S:
                await self._save(record)
                saved = time.monotonic()

    async def _finish(
        self, record: JobRecord, state: JobState, error: dict[str, str] | None
    ) -> None:
        record.state, record.error, record.finished = state, error, time.time()
        if state is not JobState.DONE:
            self._store.audio_path(record).unlink(missing_ok=True)
            record.audio_bytes = 0
        await self._save(record)
        await self._drop_inputs(record.id)
        seconds = max(0.0, time.time() - record.created)
        metrics.JOBS_ENDED.labels(state.value).inc()
        metrics.JOB_SECONDS.labels(state.value).observe(seconds)
        code = error["code"] if error else None
        logger.info(  # one line per job: how it ended, why, how long it took
            "job %s %s%s after %.1f s (%d bytes of audio, run %d)",
            record.id,
            state.value,
            f" ({code})" if code else "",
            seconds,
            record.audio_bytes,
            record.attempts,
            extra={"job": record.id, "state": state.value, "code": code},
        )
        self._notify(record)

    async def _drop_inputs(self, job_id: str) -> None:
        """An ended job's inputs can no longer be used (it never runs again): they go now,
        not at its expiry (its audio stays until then)."""
        inputs = self._store.folder(job_id) / "inputs"
        await anyio.to_thread.run_sync(partial(shutil.rmtree, inputs, ignore_errors=True))

    def _notify(self, record: JobRecord) -> None:
        if self._webhooks is not None and record.webhook_url:
            self._webhooks.notify(record)

    async def _expire_forever(self) -> None:
        while True:
            try:
                expired = await self._store.expire(time.time() - self._ttl_s)
            except Exception:
                logger.exception("expired jobs could not be deleted; trying again")
                expired = []
            if expired:
                logger.info("expired %d finished jobs", len(expired))
            await asyncio.sleep(min(60.0, max(self._ttl_s / 4, 0.5)))


def _append(out: BinaryIO, chunk: bytes) -> None:
    out.write(chunk)
    out.flush()  # readers follow the file as it grows


def _seconds(field: str | None) -> float | None:
    """A form's `duration` as seconds (None for auto, absent or not a number)."""
    try:
        return float(field) if field else None
    except ValueError:
        return None
