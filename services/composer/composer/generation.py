"""What a generation is, whichever path runs it: the request and its knobs, what a model tells
the composer about itself, and how a batch backend reports audio.

`ModelInfo` is what the composer needs of any model. A batch backend (`MusicBackend`) runs one
batch at a time, blocking, in the composer's single model thread. It reports
audio through a `BatchSink` as it is generated (one callback per row and chunk) and asks the sink
between steps which rows were cancelled, so a dead request stops costing compute.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class GenerationParams:
    """Frozen per-request knobs (never set on a shared model)."""

    duration_s: float
    seed: int
    temperature: float = 1.0
    top_k: int = 250
    top_p: float = 0.0
    guidance: float = 3.0
    text_guidance: float | None = None
    """With a style clip: double classifier-free guidance, the text pushed this much more than
    the style (MusicGen-Style's beta); None: one guidance over both."""


@dataclass(frozen=True)
class Melody:
    """A melody clip for chroma conditioning: mono samples in [-1, 1] at `sample_rate` Hz."""

    samples: npt.NDArray[np.float32]
    sample_rate: int


@dataclass(frozen=True)
class Song:
    """What a singing model sings, and the metadata it is conditioned on (all optional)."""

    lyrics: str = ""
    """The words, with section tags ([verse], [chorus] …); empty: instrumental."""
    vocal_language: str = "en"
    bpm: int | None = None
    key: str | None = None
    """e.g. `C major`."""
    time_signature: str | None = None
    """e.g. `4/4`."""


@dataclass(frozen=True)
class SourceAudio:
    """A clip the music reuses: its timbre (`reference`), the whole of it (`cover`), all but
    a span that is made anew (`repaint`), it as the music's start (`continue`: the span made
    anew is from the clip's end to the requested length), or the style of an excerpt of it
    (`style`: the excerpt is `start_s`..`end_s`)."""

    samples: npt.NDArray[np.float32]
    """[channels, N] in [-1, 1] at the model's sample rate."""
    use: str
    """`reference`, `cover`, `repaint`, `continue` or `style`."""
    strength: float = 1.0
    """cover: how closely the music follows the clip (0: not at all, 1: most)."""
    start_s: float = 0.0
    end_s: float = 0.0
    """repaint, continue: the span made anew; style: the excerpt heard; seconds."""

    def span_samples(self, rate: int) -> tuple[int, int]:
        """`start_s`..`end_s` at `rate` as (first sample, length): the length from the span's
        own length alone, so that spans of one length cover one number of samples."""
        return round(self.start_s * rate), round((self.end_s - self.start_s) * rate)


@dataclass(frozen=True)
class Section:
    """Where the music's description changes: from `start_s` on, `description` (the
    request's own description holds from 0 to the first section)."""

    start_s: float
    description: str


@dataclass(frozen=True)
class GenerationRequest:
    description: str
    params: GenerationParams
    melody: Melody | None = None
    batch_group: int | None = None
    """Rows share a batch only within one group (`MusicBackend.batch_group`)."""
    song: Song | None = None
    """Lyrics and song metadata, for models that sing (`ModelInfo.sings`)."""
    source: SourceAudio | None = None
    """A clip to reuse, for models that take one (`ModelInfo.audio_uses`)."""
    sections: tuple[Section, ...] = ()
    """Later sections, ascending, each inside the duration (`ModelInfo.follows_sections`)."""


class BatchSink(Protocol):
    """Where a backend delivers a batch's audio, row by row."""

    def emit(self, row: int, samples: npt.NDArray[np.float32]) -> None:
        """New audio for `row`: float32 [channels, N] at the backend's sample rate."""

    def is_cancelled(self, row: int) -> bool:
        """True once nobody is waiting for `row` any more."""

    def progress(self, step: int, total: int) -> None:
        """Called after every generation step (`step` of `total` in this batch)."""


class ModelInfo(Protocol):
    """What the composer needs to know of the model it serves, whoever runs it."""

    @property
    def name(self) -> str: ...

    @property
    def sample_rate(self) -> int: ...

    @property
    def channels(self) -> int: ...

    @property
    def supports_melody(self) -> bool: ...

    @property
    def sings(self) -> bool:
        """Whether the model sings lyrics (`GenerationRequest.song`)."""

    @property
    def max_duration_s(self) -> float | None:
        """The longest clip the model can make (None: no limit of its own)."""

    @property
    def audio_uses(self) -> tuple[str, ...]:
        """What the model can do with an uploaded clip besides following a melody
        (`SourceAudio.use`)."""

    @property
    def follows_sections(self) -> bool:
        """Whether the model changes its description at section times
        (`GenerationRequest.sections`), continuing from its own audio."""

    def samples_for(self, seconds: float) -> int:
        """Samples per channel that a request for `seconds` of audio yields (whole frames)."""

    def batch_group(self, description: str, song: Song | None = None) -> int | None:
        """Which rows a request may share a batch with without changing each other's audio
        (None: any). A model that attends its batch's text padding must group by length."""


class PlainModel:
    """The answers of a model that neither sings, limits its own length nor reuses a clip."""

    @property
    def sings(self) -> bool:
        return False

    @property
    def max_duration_s(self) -> float | None:
        return None

    @property
    def audio_uses(self) -> tuple[str, ...]:
        return ()

    @property
    def follows_sections(self) -> bool:
        return False


class MusicBackend(ModelInfo, Protocol):
    """A model that generates a whole batch at once (the static `BatchScheduler` runs it)."""

    def generate(self, batch: list[GenerationRequest], sink: BatchSink) -> None:
        """Generate every row of `batch` (all share `guidance`), streaming through `sink`."""


@dataclass(frozen=True)
class BackendOptions:
    """How to load a backend (built from the service settings)."""

    kind: str
    model: str
    device: str = "cpu"
    dtype: str = "float32"
    window_s: float = 30.0
    """Longest span generated in one pass; longer audio is continued window by window."""
    extend_stride_s: float = 18.0
    """New audio per continuation window (the rest of the window is the previous tail)."""
    chunk_s: float = 0.5
    """Audio per streamed chunk."""
    decode_context_s: float = 1.0
    """Codes decoded before each chunk so the codec's state is warm (cost stays linear)."""
    melody_stems: bool = True
    """Melody checkpoints (transformers): chroma of the melody's non-drum stems (demucs)."""
    diffusion_steps: int = 8
    """Denoising steps of a diffusion model (ACE-Step turbo is distilled for 8)."""
