"""The jobs API's types (named, so generated clients get named classes)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from gateway.judge.model import Analysis
from gateway.protocol import EditedBrief, GenerateForm
from weavewave_common.protocol import MusicBrief


class JobState(StrEnum):
    QUEUED = "queued"
    DESCRIBING = "describing"
    COMPOSING = "composing"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


class JobForm(GenerateForm):
    """`POST /jobs`: the fields of `/generate`, plus an optional finished description (to
    compose an edited brief without describing again) and a completion webhook."""

    description: str | None = Field(
        None, description="Compose this description directly (skips the captioner)."
    )
    webhook_url: str | None = Field(
        None, description="Called with the job (JSON, HMAC-signed) when it ends."
    )


class JobProgress(BaseModel):
    audio_seconds_ready: float | None = Field(
        None,
        description="Audio written so far (known while composing for WAV; at the end for all).",
    )
    audio_seconds_total: float | None = Field(None, description="The length being composed.")
    fraction: float = Field(ge=0, le=1, description="Share of the job done, 0 to 1.")


class JobError(BaseModel):
    code: str
    message: str


class Job(BaseModel):
    """A job's state; `audio_url` serves the audio as soon as composing starts."""

    id: str
    state: JobState
    created_at: datetime
    updated_at: datetime
    progress: JobProgress
    brief: MusicBrief | EditedBrief | None = Field(
        None,
        description="The brief composed, its sections at the times the audio has them: the "
        "captioner's, or the one sent as `brief` (whole when it was `/describe`'s answer).",
    )
    analysis: Analysis | None = Field(
        None,
        description="Once done: the judge's measures of the audio (tempo, key, loudness, "
        "flaws) against the brief's tempo and key and the length asked.",
    )
    error: JobError | None = None
    media_type: str | None = None
    audio_url: str | None = None


class JobPage(BaseModel):
    """One page of `GET /jobs`, newest first."""

    jobs: list[Job]
    next: str | None = Field(
        None, description="Pass as `after` for the next page; null on the last page."
    )
