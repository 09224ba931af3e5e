"""Gateway settings, read from `GATEWAY_*` environment variables (or a `.env` file)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from gateway.judge.weights import DEFAULT_WEIGHTS
from weavewave_common.settings import ServiceSettings

CommaList = Annotated[list[str], NoDecode]


class GatewaySettings(ServiceSettings):
    """Everything an operator can tune. Every client-controlled quantity has a cap here."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", env_file=".env", extra="ignore")

    port: int = Field(8000, description="Port to listen on.")

    captioner_url: str = Field("http://127.0.0.1:8001", description="Captioner base URL.")
    composer_url: str = Field("http://127.0.0.1:8002", description="Composer base URL.")
    captioner_urls: CommaList = Field(
        default_factory=list, description="Captioner replicas, comma-separated (overrides the URL)."
    )
    composer_urls: CommaList = Field(
        default_factory=list, description="Composer replicas, comma-separated (overrides the URL)."
    )
    composers: CommaList = Field(
        default_factory=list,
        description="Composers by name, `name=url` comma-separated, the first the default "
        "(empty: one, `default`, at the composer URL).",
    )
    resolve_replicas: bool = Field(
        False, description="Each upstream name stands for every address it resolves to."
    )
    replica_check_s: float = Field(2.0, gt=0, description="How often replicas' health is checked.")
    connect_timeout_s: float = Field(5.0, gt=0, description="Connecting to an upstream, s.")
    describe_timeout_s: float = Field(120.0, gt=0, description="Waiting for a brief, s.")
    compose_timeout_s: float = Field(
        120.0, gt=0, description="Waiting for the next audio bytes, s."
    )
    describe_retries: int = Field(1, ge=0, description="Retries of a failed describe call.")

    max_request_bytes: int = Field(
        600 * 1024 * 1024, description="Largest request body accepted, bytes."
    )
    max_images: int = Field(8, ge=0, description="Images per request.")
    max_image_bytes: int = Field(20 * 1024 * 1024, description="Largest image upload, bytes.")
    max_video_bytes: int = Field(500 * 1024 * 1024, description="Largest video upload, bytes.")
    max_audio_bytes: int = Field(50 * 1024 * 1024, description="Largest audio upload, bytes.")
    max_prompt_chars: int = Field(2000, ge=1, description="Longest prompt, characters.")
    max_duration_s: float = Field(
        120.0,
        gt=0,
        description="Longest audio a request may ask for (a composer's own may be lower).",
    )
    default_duration_s: float = Field(10.0, gt=0, description="Duration when none is given.")
    analyze_max_seconds: float = Field(
        600.0, gt=0, description="Longest audio `/analyze` measures, s (longer: 413)."
    )
    judge_threads: int = Field(
        2, ge=1, description="Audio measured at once (each takes a core for ~1 s a minute)."
    )
    judge_jobs: bool = Field(
        True,
        description="Measure every finished job's audio (its `analysis`); the first measure "
        "in a process loads librosa's compiled kernels (seconds of CPU, once).",
    )
    judge_weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="The judge's score: each part's weight (JSON: tempo, key, duration, "
        "cleanliness).",
    )

    @field_validator("judge_weights")
    @classmethod
    def _known_parts(cls, weights: dict[str, float]) -> dict[str, float]:
        unknown = set(weights) - set(DEFAULT_WEIGHTS)
        if unknown or any(w < 0 for w in weights.values()) or not any(weights.values()):
            raise ValueError(
                f"weights of {sorted(DEFAULT_WEIGHTS)}, none negative, not all zero "
                f"(unknown: {sorted(unknown)})"
            )
        return weights

    duck_depth_db: float = Field(
        -12.0,
        ge=-60,
        le=0,
        description="How far a muxed video's music dips under its voices, dB (keep_speech).",
    )
    upload_idle_timeout_s: float = Field(
        30.0, gt=0, description="A stalled upload (no bytes this long) gets 408."
    )
    min_upload_bytes_per_s: float = Field(
        8192.0,
        gt=0,
        description="After its first 10 s, an upload slower than this on average gets 408 "
        "(a drip that never stalls would hold a slot for nothing).",
    )
    max_concurrent: int = Field(
        16, ge=1, description="Requests served at once (upload to last byte); more get 429."
    )
    spool_memory_bytes: int = Field(
        1024 * 1024, description="Uploads larger than this go to a temporary file."
    )

    jobs_dir: str = Field(
        "var/jobs",
        description="Where job files (and the SQLite store) live; shared by all replicas "
        "when jobs are in PostgreSQL.",
    )
    jobs_database_url: str = Field(
        "",
        description="postgresql://... to share jobs between gateway replicas (empty: SQLite "
        "in the jobs folder, one gateway process).",
    )
    jobs_database_connections: int = Field(
        10, ge=2, le=500, description="PostgreSQL connections a replica keeps at most."
    )
    job_lease_s: float = Field(
        30.0, ge=1, description="A job whose runner stops renewing this long is run elsewhere."
    )
    job_poll_s: float = Field(
        1.0, gt=0, description="How often idle runners look for jobs and running ones for cancels."
    )
    job_workers: int = Field(2, ge=1, description="Jobs run at once (per replica).")
    max_queued_jobs: int = Field(100, ge=1, description="Jobs waiting before 429 (all replicas).")
    job_ttl_s: float = Field(86400.0, gt=0, description="Ended jobs are deleted after this, s.")
    webhook_secret: str = Field("", description="HMAC key for job webhooks (empty: webhooks off).")
    webhook_allowed_hosts: CommaList = Field(
        default_factory=list,
        description="Webhook hosts allowed even on private, loopback or link-local addresses.",
    )

    api_keys: CommaList = Field(
        default_factory=list, description="Accepted API keys, comma-separated (empty: open)."
    )
    revoked_api_keys: CommaList = Field(
        default_factory=list, description="Keys that once worked and now get 403."
    )
    require_api_keys: bool = Field(
        False,
        description="Refuse to start without API keys (the compose file sets it: a published "
        "gateway is never open by mistake).",
    )
    rate_limit_per_minute: int = Field(
        60,
        ge=1,
        description="Requests that make work (POST, DELETE) per minute per API key (per client "
        "when keys are off).",
    )
    read_rate_limit_per_minute: int = Field(
        600,
        ge=1,
        description="Reads (GET: following jobs, listing models) per minute per API key (per "
        "client when keys are off), a budget of their own.",
    )
    cors_origins: CommaList = Field(
        default_factory=list, description="Origins allowed by CORS, comma-separated (empty: none)."
    )

    @model_validator(mode="after")
    def _keys_when_required(self) -> GatewaySettings:
        if self.require_api_keys and not self.api_keys:
            raise ValueError(
                "GATEWAY_REQUIRE_API_KEYS is on and GATEWAY_API_KEYS is empty: give the "
                "comma-separated API keys (with docker compose: WEAVEWAVE_API_KEYS=key1,key2 "
                "docker compose up)."
            )
        return self

    @field_validator(
        "api_keys",
        "revoked_api_keys",
        "cors_origins",
        "webhook_allowed_hosts",
        "captioner_urls",
        "composer_urls",
        "composers",
        mode="before",
    )
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value
