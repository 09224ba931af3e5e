"""A request's condition, worked out off the step loop (on the text-encoder thread).

For MusicGen it is the description's cross-attention K/V. For a melody checkpoint it is a prefix
per window: the melody heard from that window's start (the clip looped when it is shorter, as
audiocraft's continuation does; the whole clip when one window holds the request), its non-drum
stems separated first (`COMPOSER_MELODY_STEMS`), turned into chroma and projected with the text.
A request without a melody on a melody checkpoint conditions on the null chroma, as `generate`.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from composer.chroma import ChromaExtractor, StemSeparator
from composer.engine.musicgen import Condition, MusicgenStepModel
from composer.engine.rows import Geometry
from composer.generation import GenerationRequest, Melody


class Conditioner:
    """`conditioner(request)` -> its `Condition` for the engine's model."""

    def __init__(
        self,
        model: MusicgenStepModel,
        geometry: Geometry,
        chroma: ChromaExtractor | None = None,
        stems: StemSeparator | None = None,
    ) -> None:
        if model.melody and chroma is None:
            raise ValueError("a melody checkpoint needs a chroma extractor")
        self._model = model
        self._geometry = geometry
        self._chroma = chroma
        self._stems = stems

    def __call__(self, request: GenerationRequest) -> Condition:
        chromas: list[torch.Tensor | None] = [None]
        if self._model.melody and request.melody is not None:
            chromas = self._window_chromas(request.melody, request.params.duration_s)
        condition = self._model.condition(request.description, chromas)
        if not request.sections or self._model.melody:
            return condition
        later = [self._model.condition(s.description, [None]).text for s in request.sections]
        return replace(condition, section_texts=tuple(t for t in later if t is not None))

    def _window_chromas(self, melody: Melody, seconds: float) -> list[torch.Tensor | None]:
        assert self._chroma is not None
        rate = self._chroma.settings.sampling_rate
        wav = self._melody_at(melody, rate)
        g = self._geometry
        windows = g.windows(seconds)
        if windows == 1:
            return [self._chroma(wav)]
        per_frame = g.hop * rate / g.sample_rate
        length = round(g.window_frames * per_frame)
        chromas: list[torch.Tensor | None] = []
        for window in range(windows):
            start = round(g.window_start(window) * per_frame)
            chromas.append(self._chroma(wav[torch.arange(start, start + length) % wav.shape[-1]]))
        return chromas

    def _melody_at(self, melody: Melody, rate: int) -> torch.Tensor:
        """The melody (its non-drum stems when separating) as mono [T] at `rate`."""
        from julius.resample import resample_frac

        wav = torch.from_numpy(melody.samples).float()
        if self._stems is not None:
            return self._stems(wav, melody.sample_rate, rate)
        if melody.sample_rate == rate:
            return wav
        return resample_frac(wav, melody.sample_rate, rate)
