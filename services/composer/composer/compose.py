"""Composer: check the knobs, queue the request, and turn its chunks into encoded bytes.

The response starts as soon as the request is accepted (WAV sends its header at once); audio
follows chunk by chunk. A failure after the first byte ends the stream abruptly, so the client
sees an incomplete response, never a silently short file. The request's ticket is cancelled
when the response ends, however it ends: completed, broken, the caller gone (even before the
body started), shut down.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from functools import partial

import anyio
import numpy as np

from composer import metrics
from composer.encode import StreamEncoder, open_encoder
from composer.generation import GenerationRequest, Melody, ModelInfo, SourceAudio
from composer.protocol import ComposeRequest
from composer.scheduler import Scheduler, Ticket
from weavewave_common.audio import decode_audio
from weavewave_common.deadline import DeadlineExceeded, idle_bounded
from weavewave_common.errors import InvalidInput, PayloadTooLarge
from weavewave_common.loudness import Audio, PeakLimiter, normalized
from weavewave_common.protocol import STYLE_EXCERPT_S, Normalize
from weavewave_common.streams import AudioStream
from weavewave_common.uploads import Upload

logger = logging.getLogger(__name__)

_ALONE = itertools.count(-1, -1)
"""Batch groups of one: negative, so no backend's own group is ever one of them."""


@dataclass(frozen=True)
class ComposeLimits:
    max_duration_s: float = 120.0
    max_description_chars: int = 2000
    max_melody_bytes: int = 20 * 1024 * 1024
    max_melody_seconds: float = 30.0


class Composer:
    """Serves compose requests over a `Scheduler`."""

    def __init__(self, backend: ModelInfo, scheduler: Scheduler, limits: ComposeLimits) -> None:
        self._backend = backend
        self._scheduler = scheduler
        self._limits = limits

    @property
    def max_duration_s(self) -> float:
        """The service's cap, or the model's own where it is shorter."""
        own = self._backend.max_duration_s
        return self._limits.max_duration_s if own is None else min(own, self._limits.max_duration_s)

    def _check(self, request: ComposeRequest, melody: Upload | None) -> str:
        description = " ".join(request.description.split())
        if not description:
            raise InvalidInput("description: must not be blank.", code="empty_description")
        if len(description) > self._limits.max_description_chars:
            raise InvalidInput(
                f"description: over {self._limits.max_description_chars} characters.",
                code="description_too_long",
            )
        longest = self.max_duration_s
        if request.duration > longest:
            raise InvalidInput(f"duration: at most {longest:g} s.", code="duration_too_long")
        if request.lyrics is not None and not self._backend.sings:
            raise InvalidInput(
                f"lyrics: {self._backend.name} does not sing; leave them out, or use a model "
                "that sings.",
                code="vocals_unsupported",
            )
        if melody is not None:
            if not self._backend.supports_melody:
                raise InvalidInput(
                    f"melody: {self._backend.name} does not take a melody; use "
                    "a melody checkpoint.",
                    code="melody_unsupported",
                )
            if melody.size is not None and melody.size > self._limits.max_melody_bytes:
                raise PayloadTooLarge(f"melody: over {self._limits.max_melody_bytes} bytes.")
        return description

    def _check_reuse(self, request: ComposeRequest, audio: Upload | None) -> None:
        """An `audio` upload needs an `audio_use` the model offers, and the other way round;
        a repainted span lies inside the clip's requested length."""
        use, uses = request.audio_use, self._backend.audio_uses
        if audio is None and use is None:
            return
        if audio is None or use is None:
            raise InvalidInput(
                "audio, audio_use: give both (a clip and what it is for), or neither.",
                code="audio_use_without_audio",
            )
        if use not in uses:
            offered = ", ".join(uses) if uses else "nothing"
            raise InvalidInput(
                f"audio_use: {self._backend.name} cannot use a clip for {use!r} (it offers "
                f"{offered}).",
                code="audio_use_unsupported",
            )
        if audio.size is not None and audio.size > self._limits.max_melody_bytes:
            raise PayloadTooLarge(f"audio: over {self._limits.max_melody_bytes} bytes.")
        if use == "repaint":
            start, end = request.repaint_start, request.repaint_end
            if start is None or end is None or not start < end <= request.duration:
                raise InvalidInput(
                    "repaint_start, repaint_end: the span to make anew, with "
                    f"0 <= start < end <= duration ({request.duration:g} s).",
                    code="repaint_span_invalid",
                )

    async def _source(self, request: ComposeRequest, audio: Upload) -> SourceAudio:
        """The uploaded clip at the model's rate and channels, for `request.audio_use`."""
        decoded = await anyio.to_thread.run_sync(
            decode_audio,
            audio.file,
            audio.filename,
            self._backend.sample_rate,
            self.max_duration_s,
            self._backend.channels == 2,
        )
        samples = decoded.samples if decoded.samples.ndim == 2 else decoded.samples[None]
        assert request.audio_use is not None
        clip_s = samples.shape[-1] / self._backend.sample_rate
        start_s, end_s = request.repaint_start or 0.0, request.repaint_end or 0.0
        if request.audio_use == "style":
            start_s, end_s = self._excerpt(request, clip_s)
        if request.audio_use == "continue":  # made anew: everything after the clip
            start_s, end_s = clip_s, request.duration
            if start_s >= end_s:
                raise InvalidInput(
                    f"audio: the clip ({start_s:.2f} s) is as long as the music asked for "
                    f"({end_s:g} s): there is nothing to continue; ask for a longer duration.",
                    code="continue_nothing_left",
                )
        return SourceAudio(
            samples=samples,
            use=request.audio_use,
            strength=request.cover_strength,
            start_s=start_s,
            end_s=end_s,
        )

    @staticmethod
    def _excerpt(request: ComposeRequest, clip_s: float) -> tuple[float, float]:
        """The style excerpt's window: `style_length` (at most the clip) from `style_start`,
        by default the clip's middle; 422 when the clip or the window cannot hold one."""
        shortest = STYLE_EXCERPT_S[0]
        if clip_s < shortest:
            raise InvalidInput(
                f"audio: the clip ({clip_s:.2f} s) is shorter than a style excerpt "
                f"({shortest:g} s at least).",
                code="style_clip_too_short",
            )
        length = min(request.style_length, clip_s)
        start = request.style_start
        if start is None:
            start = (clip_s - length) / 2
        if start + length > clip_s + 1e-6:
            raise InvalidInput(
                f"style_start, style_length: the excerpt ({start:g} s + {length:g} s) must lie "
                f"inside the clip ({clip_s:.2f} s).",
                code="style_window_invalid",
            )
        return start, start + length

    async def compose(
        self,
        request: ComposeRequest,
        melody: Upload | None,
        idle_timeout_s: float | None = None,
        audio: Upload | None = None,
    ) -> AudioStream:
        """Accept (or refuse with an `ApiError`) and return the stream to send.

        `idle_timeout_s` is how long the caller waits for the next audio: a request still
        queued (or stalled) past it is dropped, freeing its place, and its stream cut."""
        description = self._check(request, melody)
        self._check_reuse(request, audio)
        sections = request.later_sections()
        if sections and not self._backend.follows_sections:
            raise InvalidInput(
                f"sections: {self._backend.name} does not follow sections; MusicGen text "
                "checkpoints (COMPOSER_BACKEND=transformers) do. Leave them out for one piece.",
                code="sections_unsupported",
            )
        source = await self._source(request, audio) if audio is not None else None
        clip = None
        if melody is not None:
            decoded = await anyio.to_thread.run_sync(
                decode_audio,
                melody.file,
                melody.filename,
                self._backend.sample_rate,
                self._limits.max_melody_seconds,
            )
            clip = Melody(decoded.samples, decoded.sample_rate)
        params = request.to_params()
        song = request.song if self._backend.sings else None
        group = self._backend.batch_group(description, song)
        if source is not None and source.use == "style":
            # the excerpt's length (in samples, as the backend cuts it) is the style
            # conditioner's, set per batch: rows of one length share one
            _, samples = source.span_samples(self._backend.sample_rate)
            group = hash(("style", samples, group))
        elif source is not None:
            # the pipelines take one clip per call: a request with its own shares a batch with none
            group = next(_ALONE)
        total = self._backend.samples_for(params.duration_s)
        encoder = open_encoder(  # before the ticket: a format that fails to open queues nothing
            request.format, self._backend.sample_rate, self._backend.channels, total
        )
        ticket = self._scheduler.submit(
            GenerationRequest(description, params, clip, group, song, source, sections)
        )
        headers = {
            "X-Sample-Rate": str(encoder.sample_rate),
            "X-Channels": str(self._backend.channels),
            "X-Duration": f"{total / self._backend.sample_rate:.3f}",
            "X-Seed": str(params.seed),
            "X-Model": self._backend.name,
        }
        if sections:
            rate = self._backend.sample_rate
            starts = [self._backend.samples_for(s.start_s) / rate for s in sections]
            headers["X-Sections"] = ",".join(f"{t:.3f}" for t in [0.0, *starts])

        async def release() -> None:
            ticket.cancel()

        body = self._stream(ticket, encoder, idle_timeout_s, request.normalize)
        return AudioStream(request.format.media_type, headers, body, release)

    async def _stream(
        self,
        ticket: Ticket,
        encoder: StreamEncoder,
        idle_timeout_s: float | None,
        normalize: Normalize,
    ) -> AsyncGenerator[bytes]:
        started = time.perf_counter()
        outcome = "failed"
        metrics.ACTIVE.inc()
        try:
            header = encoder.encode(np.zeros((self._backend.channels, 0), dtype=np.float32))
            if header:
                yield header
            late = partial(DeadlineExceeded, "No audio within the caller's deadline.")
            chunks = idle_bounded(ticket.chunks(), idle_timeout_s, late)
            leveled = (
                self._normalized(chunks)
                if normalize is Normalize.LOUDNESS
                else self._limited(chunks)
            )
            first = True
            async for chunk in leveled:
                data = await anyio.to_thread.run_sync(encoder.encode, chunk)
                if first:
                    metrics.FIRST_AUDIO.observe(time.perf_counter() - started)
                    first = False
                if data:
                    yield data
            tail = await anyio.to_thread.run_sync(encoder.close)
            if tail:
                yield tail
            outcome = "completed"
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        except DeadlineExceeded:
            outcome = "late"
            logger.warning("no audio within the caller's deadline; the stream is cut short")
            raise
        except Exception:
            logger.exception("the audio stream broke; the response is cut short on purpose")
            raise
        finally:
            ticket.cancel()
            metrics.ACTIVE.dec()
            metrics.OUTCOMES.labels(outcome).inc()

    async def _limited(self, chunks: AsyncIterator[Audio]) -> AsyncIterator[Audio]:
        """The chunks at the model's level, peaks limited, as they come (a look-ahead late)."""
        limiter = PeakLimiter(self._backend.sample_rate, self._backend.channels)
        async for chunk in chunks:
            metrics.AUDIO_SECONDS.inc(chunk.shape[1] / self._backend.sample_rate)
            yield limiter.process(chunk)
        yield limiter.flush()

    async def _normalized(self, chunks: AsyncIterator[Audio]) -> AsyncIterator[Audio]:
        """The whole clip at the target loudness, once all of it is generated, in pieces."""
        rate = self._backend.sample_rate
        pieces = []
        async for chunk in chunks:
            metrics.AUDIO_SECONDS.inc(chunk.shape[1] / rate)
            pieces.append(chunk)
        if not pieces:
            return
        whole = await anyio.to_thread.run_sync(normalized, np.concatenate(pieces, axis=1), rate)
        step = rate // 2
        for start in range(0, whole.shape[1], step):
            yield whole[:, start : start + step]
