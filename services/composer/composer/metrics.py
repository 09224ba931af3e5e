"""The composer's own Prometheus metrics (HTTP metrics come from `weavewave_common.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

AUDIO_SECONDS = Counter("composer_audio_seconds_total", "Seconds of audio streamed to clients.")
STEPS = Counter("composer_generation_steps_total", "Model steps run (rate() gives steps/s).")
BATCHES = Counter("composer_batches_total", "Batches run by the model thread.")
BATCH_SIZE = Histogram(
    "composer_batch_size", "Requests per batch.", buckets=(1, 2, 3, 4, 6, 8, 12, 16)
)
QUEUE_DEPTH = Gauge("composer_queue_depth", "Requests waiting for the model.")
ACTIVE = Gauge("composer_active_generations", "Requests being generated for a live client.")
FIRST_AUDIO = Histogram(
    "composer_time_to_first_audio_seconds",
    "From request to the first audio bytes.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
OUTCOMES = Counter("composer_requests_total", "Compose requests by outcome.", ["outcome"])
SLOTS = Gauge("composer_engine_slots", "Slots of the continuous-batching engine.")
SLOTS_BUSY = Gauge("composer_engine_slots_busy", "Engine slots holding a request.")
STEP_ROWS = Histogram(
    "composer_engine_step_rows", "Requests advanced per engine step.", buckets=(1, 2, 4, 8, 16, 32)
)
STEP_SECONDS = Histogram(
    "composer_engine_step_seconds",
    "Wall time of one engine step (1 / steps per second).",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2),
)
QUEUE_WAIT = Histogram(
    "composer_queue_wait_seconds",
    "From submission to a slot.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WARMUP_SECONDS = Gauge(
    "composer_engine_warmup_seconds",
    "Start-up time spent compiling and capturing every slot bucket before /readyz turned true.",
)
