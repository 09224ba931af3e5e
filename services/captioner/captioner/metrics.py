"""The captioner's own Prometheus metrics (HTTP metrics come from `weavewave_common.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BRIEFS = Counter("captioner_briefs_total", "Briefs written, by how they were obtained.", ["source"])
FAILURES = Counter("captioner_failures_total", "Describe requests that failed, by code.", ["code"])
GENERATIONS = Counter(
    "captioner_generations_total",
    "Engine generations that ran to an end, by vLLM's finish reason (stop, length, abort).",
    ["finish"],
)
TOKENS = Counter("captioner_tokens_total", "Tokens processed by the engine.", ["kind"])
IN_FLIGHT = Gauge("captioner_requests_in_flight", "Describe requests being served (queue depth).")
DECODE_SECONDS = Histogram(
    "captioner_decode_seconds", "Time decoding media.", buckets=(0.01, 0.05, 0.1, 0.3, 1, 3, 10)
)
GENERATE_SECONDS = Histogram(
    "captioner_generate_seconds",
    "Time in the engine for one brief (all attempts).",
    buckets=(0.1, 0.3, 1, 3, 10, 30, 60),
)
