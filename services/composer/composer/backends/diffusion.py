"""Diffusion composers through diffusers pipelines: a whole clip per denoising, a batch at once.

A diffusion model denoises every row of a batch over the same steps and the same latent length,
so a batch forms at the start (the static `BatchScheduler`), and only requests that cannot change
each other's audio share one: the same duration and steps, the same song metadata (the pipeline
takes bpm, key and time signature once per call) and the same token lengths (shorter texts are
padded, and the padding leaks into a row's audio). Each row has its own generator, so a seed
gives the same audio alone or batched. Progress is reported per denoising step; when every row
of a batch is cancelled the callback stops the pipeline at the next step. The audio exists only
once the last step is decoded; it is then streamed in chunks.

Served: ACE-Step (`AceStepPipeline`: songs with lyrics, 48 kHz stereo, up to 10 minutes).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from composer.backends import BackendOptions, BatchSink, GenerationRequest, MusicBackend, Song

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class Stopped(Exception):
    """Raised from a step callback: every row of the batch was cancelled."""


def pipeline_class(model: str) -> str:
    """The pipeline class a diffusers folder (or cached hub id) names in `model_index.json`."""
    from huggingface_hub import hf_hub_download

    folder = Path(model)
    index = folder / "model_index.json"
    path = index if index.is_file() else Path(hf_hub_download(model, "model_index.json"))
    return str(json.loads(path.read_text())["_class_name"])


def load_pipeline_backend(options: BackendOptions) -> MusicBackend:
    """The backend for whichever pipeline `options.model` holds."""
    kind = pipeline_class(options.model)
    if kind == "AceStepPipeline":
        return AceStepBackend.load(options)
    raise ValueError(f"{options.model}: a {kind} is not served by the diffusers backend.")


class AceStepBackend:
    """ACE-Step: tags (the description) and lyrics in, a song out."""

    def __init__(self, pipe: Any, options: BackendOptions) -> None:
        self._pipe = pipe
        self._options = options
        self._device = torch.device(options.device)
        condition = pipe.condition_encoder
        self._max_duration_s = condition.silence_latent.shape[1] / pipe.latents_per_second
        """The silence latent the pipeline tiles is as long as the longest song (600 s)."""

    @classmethod
    def load(cls, options: BackendOptions) -> AceStepBackend:
        from diffusers import AceStepPipeline

        pipe = AceStepPipeline.from_pretrained(options.model, torch_dtype=DTYPES[options.dtype])
        pipe = pipe.to(options.device)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, options)

    @property
    def name(self) -> str:
        return self._options.model

    @property
    def sample_rate(self) -> int:
        return int(self._pipe.sample_rate)

    @property
    def channels(self) -> int:
        return int(self._pipe.vae.config.audio_channels)

    @property
    def supports_melody(self) -> bool:
        return False

    @property
    def sings(self) -> bool:
        return True

    @property
    def max_duration_s(self) -> float | None:
        return float(self._max_duration_s)

    @property
    def guided(self) -> bool:
        """Turbo checkpoints are guidance-distilled: the pipeline ignores a guidance scale."""
        return not self._pipe.is_turbo

    def samples_for(self, seconds: float) -> int:
        return round(seconds * self.sample_rate)

    def batch_group(self, description: str, song: Song | None = None) -> int | None:
        song = song or Song()
        tokenizer = self._pipe.tokenizer
        lengths = (
            len(tokenizer(description)["input_ids"]),
            len(tokenizer(song.lyrics)["input_ids"]),
        )
        return hash((lengths, song.vocal_language, song.bpm, song.key, song.time_signature))

    def generate(self, batch: list[GenerationRequest], sink: BatchSink) -> None:
        first = batch[0]
        song = first.song or Song()
        steps = self._options.diffusion_steps

        def on_step(_: Any, step: int, __: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            sink.progress(step + 1, steps)
            if all(sink.is_cancelled(row) for row in range(len(batch))):
                raise Stopped
            return tensors

        generators = [
            torch.Generator(device=self._device).manual_seed(r.params.seed) for r in batch
        ]
        try:
            with torch.inference_mode():
                audio = self._pipe(
                    prompt=[r.description for r in batch],
                    lyrics=[(r.song or Song()).lyrics for r in batch],
                    vocal_language=[(r.song or Song()).vocal_language for r in batch],
                    audio_duration=first.params.duration_s,
                    num_inference_steps=steps,
                    guidance_scale=first.params.guidance if self.guided else 1.0,
                    generator=generators,
                    bpm=song.bpm,
                    keyscale=song.key,
                    timesignature=beats_of(song.time_signature),
                    callback_on_step_end=on_step,
                ).audios
        except Stopped:
            logger.info("every row of a %d-row batch was cancelled; denoising stopped", len(batch))
            return
        samples = self.samples_for(first.params.duration_s)
        chunk = max(1, round(self._options.chunk_s * self.sample_rate))
        clips = audio[:, :, :samples].float().cpu().numpy()
        for row in range(len(batch)):
            for start in range(0, samples, chunk):
                if sink.is_cancelled(row):
                    break
                sink.emit(row, clips[row, :, start : start + chunk])


def beats_of(time_signature: str | None) -> str | None:
    """ACE-Step's time signature is the beats per bar: `3/4` -> `3`."""
    if not time_signature:
        return None
    return time_signature.split("/")[0].strip() or None
