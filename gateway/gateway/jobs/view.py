"""A stored job as the API shows it (`Job`), with its progress worked out."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import TypeAdapter

from gateway.jobs.model import Job, JobError, JobProgress, JobState
from gateway.jobs.store import JobRecord
from gateway.judge.model import Analysis
from gateway.protocol import EditedBrief
from weavewave_common.protocol import MusicBrief

WAV_HEADER_BYTES = 44
COMPOSED_BRIEF: TypeAdapter[MusicBrief | EditedBrief] = TypeAdapter(MusicBrief | EditedBrief)
"""A job's stored brief: the captioner's (or one sent back whole), else an edited one."""


def audio_seconds_ready(record: JobRecord) -> float | None:
    """Seconds of audio written: exact for WAV (16-bit PCM) while composing, the whole length
    once done, unknown while a compressed format is being written."""
    if record.state is JobState.DONE:
        return record.duration_s
    if record.media_type == "audio/wav" and record.sample_rate and record.channels:
        frames = max(0, record.audio_bytes - WAV_HEADER_BYTES) / (2 * record.channels)
        return round(frames / record.sample_rate, 3)
    return None


def progress_of(record: JobRecord) -> JobProgress:
    ready = audio_seconds_ready(record)
    if record.state is JobState.DONE:
        fraction = 1.0
    elif record.state is JobState.COMPOSING and ready is not None and record.duration_s:
        fraction = 0.1 + 0.9 * min(1.0, ready / record.duration_s)
    elif record.state in (JobState.DESCRIBING, JobState.COMPOSING):
        fraction = 0.1
    else:
        fraction = 0.0
    return JobProgress(
        audio_seconds_ready=ready, audio_seconds_total=record.duration_s, fraction=fraction
    )


def job_view(record: JobRecord) -> Job:
    has_audio = record.state in (JobState.COMPOSING, JobState.DONE) and record.media_type
    return Job(
        id=record.id,
        state=record.state,
        created_at=datetime.fromtimestamp(record.created, UTC),
        updated_at=datetime.fromtimestamp(record.updated, UTC),
        progress=progress_of(record),
        brief=COMPOSED_BRIEF.validate_python(record.brief) if record.brief else None,
        analysis=Analysis.model_validate(record.analysis) if record.analysis else None,
        error=JobError(**record.error) if record.error else None,
        media_type=record.media_type,
        audio_url=f"/jobs/{record.id}/audio" if has_audio else None,
    )
