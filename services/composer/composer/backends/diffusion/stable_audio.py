"""Stable Audio Open (`StableAudioPipeline`): 44.1 kHz stereo, up to its 47.55 s window."""

from __future__ import annotations

from collections.abc import Callable

import torch

from composer.backends.diffusion.pipeline import PipelineBackend, on_step
from composer.generation import GenerationRequest, Song


class StableAudioBackend(PipelineBackend):
    """Stable Audio Open: 44.1 kHz stereo up to its window (47.55 s). It always denoises the
    whole window and cuts the requested span from it, so a short clip costs as much as a long
    one."""

    pipeline_class = "StableAudioPipeline"

    def batch_group(self, description: str, song: Song | None = None) -> int | None:
        """Any two prompts: the pipeline pads every prompt to T5's `max_length`, so a row's
        padding is the same alone or batched."""
        return None

    @property
    def max_duration_s(self) -> float | None:
        pipe = self._pipe
        return float(pipe.transformer.config.sample_size * pipe.vae.hop_length / self.sample_rate)

    def _run(
        self,
        batch: list[GenerationRequest],
        generators: list[torch.Generator],
        steps: int,
        step_done: Callable[[int], None],
    ) -> torch.Tensor:
        # `end` is also the clip's length the model is conditioned on: kept within the window
        end = min(self._seconds_asked(batch[0]), self.max_duration_s or float("inf"))
        audio: torch.Tensor = self._pipe(
            **on_step(step_done),
            prompt=[r.description for r in batch],
            audio_end_in_s=end,
            num_inference_steps=steps,
            guidance_scale=batch[0].params.guidance,
            generator=generators,
        ).audios
        return audio
