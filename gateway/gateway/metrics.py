"""The gateway's own Prometheus metrics (HTTP metrics come from `weavewave_common.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

UPSTREAM_SECONDS = Histogram(
    "gateway_upstream_seconds",
    "Upstream call latency (describe: whole call; compose: until the response starts).",
    ["upstream"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
FIRST_AUDIO = Histogram(
    "gateway_time_to_first_audio_seconds",
    "From request to the first audio byte relayed (recorded when the stream ends).",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
STREAMS = Counter("gateway_streams_total", "Audio streams relayed, by outcome.", ["outcome"])
IN_FLIGHT = Gauge("gateway_requests_in_flight", "Requests holding a capacity slot.")
REPLICAS = Gauge("gateway_upstream_replicas", "Replicas known per upstream tier.", ["tier"])
REPLICAS_READY = Gauge(
    "gateway_upstream_replicas_ready", "Replicas whose last health check passed.", ["tier"]
)
REJECTED = Counter("gateway_at_capacity_total", "Requests refused with 429 at capacity.")
RATE_LIMITED = Counter(
    "gateway_rate_limited_total",
    "Requests refused with 429 by a rate limit, by budget.",
    ["budget"],
)
JOBS_ENDED = Counter("gateway_jobs_ended_total", "Jobs that ended here, by state.", ["state"])
JOB_SECONDS = Histogram(
    "gateway_job_seconds",
    "From a job's submission to its end, by state.",
    ["state"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
JOBS_QUEUED = Gauge("gateway_jobs_queued", "Jobs waiting to run (all replicas), as last seen.")
JUDGE_SECONDS = Histogram(
    "gateway_judge_cpu_seconds",
    "CPU time the judge took to measure one piece of audio (/analyze, a finished job).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
JUDGED_AUDIO_SECONDS = Counter(
    "gateway_judged_audio_seconds_total", "Seconds of audio the judge measured."
)
