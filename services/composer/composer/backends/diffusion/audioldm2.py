"""AudioLDM 2 (`AudioLDM2Pipeline`, `-music`): 16 kHz mono."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from composer.backends.diffusion.pipeline import PipelineBackend, on_step
from composer.generation import BackendOptions, GenerationRequest, Song


class AudioLDM2Backend(PipelineBackend):
    """AudioLDM 2 (`-music`): 16 kHz mono, any length (its UNet was trained on 10.24 s)."""

    pipeline_class = "AudioLDM2Pipeline"

    def __init__(self, pipe: Any, options: BackendOptions) -> None:
        language_model = type(pipe.language_model).__name__
        if language_model != "GPT2LMHeadModel":
            raise ValueError(
                f"{options.model}: its language model is a {language_model}; diffusers' AudioLDM "
                "2 generates with a GPT2LMHeadModel only (a GPT2Model fails: diffusers #12630)."
            )
        super().__init__(pipe, options)

    @property
    def sample_rate(self) -> int:
        return int(self._pipe.vocoder.config.sampling_rate)

    @property
    def channels(self) -> int:
        return 1

    def batch_group(self, description: str, song: Song | None = None) -> int | None:
        """Both encoders' token lengths: a shorter prompt padded in a batch sounds different
        (by some 8 % of a seed change), so only equal lengths share one."""
        pipe = self._pipe
        tokenizers = (pipe.tokenizer, pipe.tokenizer_2)
        return hash(tuple(len(tokenizer(description)["input_ids"]) for tokenizer in tokenizers))

    def _run(
        self,
        batch: list[GenerationRequest],
        generators: list[torch.Generator],
        steps: int,
        step_done: Callable[[int], None],
    ) -> torch.Tensor:
        audio: torch.Tensor = self._pipe(
            **on_step(step_done),
            prompt=[r.description for r in batch],
            audio_length_in_s=self._seconds_asked(batch[0]),
            num_inference_steps=steps,
            guidance_scale=batch[0].params.guidance,
            generator=generators,
            output_type="pt",
        ).audios
        return audio[:, None]
