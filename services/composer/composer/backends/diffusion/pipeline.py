"""What every diffusion pipeline shares: loading (the decoder in float32), per-row generators,
progress and cancellation per step, the exact length, chunked emission; and the helpers the
backends use."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from composer.dtypes import DTYPES
from composer.generation import (
    BackendOptions,
    BatchSink,
    GenerationRequest,
    PlainModel,
    Song,
    SourceAudio,
)

logger = logging.getLogger(__name__)


class Stopped(Exception):
    """Raised from a step callback: every row of the batch was cancelled."""


def fitted(audio: torch.Tensor, samples: int) -> torch.Tensor:
    """`audio` [..., N] cut or zero-padded to `samples`."""
    return torch.nn.functional.pad(audio, (0, max(0, samples - audio.shape[-1])))[..., :samples]


def on_step_end(step_done: Callable[[int], None]) -> dict[str, Any]:
    """`step_done` as a pipeline's `callback_on_step_end` (ACE-Step, Stable Audio 3)."""

    def callback(_: Any, step: int, __: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        step_done(step)
        return tensors

    return {"callback_on_step_end": callback}


def on_step(step_done: Callable[[int], None]) -> dict[str, Any]:
    """`step_done` as a pipeline's legacy `callback` (Stable Audio Open, AudioLDM 2)."""
    return {"callback": lambda step, _, __: step_done(step), "callback_steps": 1}


PASTED_BACK = ("repaint", "continue")
"""The clip uses whose kept audio is the clip itself (the pipelines only condition on it)."""


def kept_outside(
    audio: torch.Tensor, clip: torch.Tensor, source: SourceAudio, rate: int
) -> torch.Tensor:
    """The clip itself (fitted to the audio's length) outside the span made anew
    (`source.start_s`..`end_s`), bit for bit — the pipelines only condition on it: their own
    decode of the kept audio differs — with 20 ms crossfades inside the span so its edges do
    not click."""
    samples = audio.shape[-1]
    clip = fitted(clip.to(audio.dtype), samples)
    start, end = round(source.start_s * rate), min(samples, round(source.end_s * rate))
    fade = min(round(0.02 * rate), max(0, (end - start) // 2))
    weight = torch.zeros(samples, dtype=audio.dtype, device=audio.device)
    weight[start:end] = 1.0
    if fade:
        ramp = torch.linspace(0.0, 1.0, fade + 2, dtype=audio.dtype, device=audio.device)[1:-1]
        weight[start : start + fade] = ramp
        weight[end - fade : end] = ramp.flip(0)
    return clip + weight * (audio - clip)


def pipeline_class(model: str) -> str:
    """The pipeline class a diffusers folder (or cached hub id) names in `model_index.json`."""
    from huggingface_hub import hf_hub_download

    folder = Path(model)
    index = folder / "model_index.json"
    path = index if index.is_file() else Path(hf_hub_download(model, "model_index.json"))
    return str(json.loads(path.read_text())["_class_name"])


def decode_in_float32(pipe: Any, dtype: torch.dtype) -> None:
    """The audio decoder (the VAE, and AudioLDM 2's vocoder) in float32 whatever the
    denoiser's dtype: a half-precision decode is audible (bf16 keeps 8 bits of mantissa), and
    it costs one call a clip. The VAE's decode takes the denoiser's latents in float32; its
    encode (a clip to reuse) hands its latents back in the denoiser's dtype, as the pipelines
    expect of a VAE of their own dtype."""
    vae = pipe.vae.float()
    if getattr(pipe, "vocoder", None) is not None:
        pipe.vocoder.float()
    if dtype == torch.float32:
        return
    decode, encode = vae.decode, vae.encode

    def decode_float32(latents: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        return decode(latents.float(), *args, **kwargs)

    def encode_to_dtype(audio: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        out = encode(audio.float(), *args, **kwargs)
        if getattr(out, "latents", None) is not None:  # SAME
            out.latents = out.latents.to(dtype)
        if getattr(out, "latent_dist", None) is not None:  # Oobleck, KL
            dist = out.latent_dist
            out.latent_dist = type(dist)(dist.parameters.to(dtype))
        return out

    vae.decode = decode_float32
    vae.encode = encode_to_dtype


class PipelineBackend(PlainModel):
    """What every diffusion pipeline shares: loading, per-row generators, a step callback that
    reports progress and stops a wholly cancelled batch, the exact length, chunked emission.
    A subclass says how to call its pipeline (`_run`)."""

    pipeline_class = ""

    def __init__(self, pipe: Any, options: BackendOptions) -> None:
        self._pipe = pipe
        self._options = options
        self._device = torch.device(options.device)

    @classmethod
    def load(cls, options: BackendOptions) -> PipelineBackend:
        import diffusers

        kind = getattr(diffusers, cls.pipeline_class)
        dtype = DTYPES[options.dtype]
        pipe = kind.from_pretrained(options.model, torch_dtype=dtype)
        pipe = pipe.to(options.device)
        decode_in_float32(pipe, dtype)
        pipe.set_progress_bar_config(disable=True)
        return cls(pipe, options)

    def sibling(self) -> PipelineBackend:
        """The same model for another model thread: the same modules (weights are shared, and
        read-only while serving), its own pipeline object, scheduler and tokenizers (a
        pipeline's call keeps its state on them, and a fast tokenizer refuses two threads)."""
        pipe = self._pipe
        components = {
            name: part if isinstance(part, torch.nn.Module) or part is None else copy.deepcopy(part)
            for name, part in pipe.components.items()
        }
        twin = type(pipe)(**components)
        twin.set_progress_bar_config(disable=True)
        return type(self)(twin, self._options)

    @property
    def name(self) -> str:
        return self._options.model

    @property
    def sample_rate(self) -> int:
        return int(self._pipe.vae.config.sampling_rate)

    @property
    def channels(self) -> int:
        return int(self._pipe.vae.config.audio_channels)

    @property
    def supports_melody(self) -> bool:
        return False

    def samples_for(self, seconds: float) -> int:
        return round(seconds * self.sample_rate)

    def _clip(self, source: SourceAudio) -> torch.Tensor:
        """A clip to reuse on the device, float32 as uploaded (so what is kept of it can be
        pasted back bit for bit); a request with one is batched alone."""
        return torch.from_numpy(source.samples).to(self._device)

    def _kept(
        self, audio: torch.Tensor, clip: torch.Tensor | None, source: SourceAudio | None
    ) -> torch.Tensor:
        """`audio`, with the clip itself pasted back outside the span made anew for the uses
        that keep it (`repaint`, `continue`)."""
        if source is None or clip is None or source.use not in PASTED_BACK:
            return audio
        return kept_outside(audio, clip, source, self.sample_rate)

    def _seconds_asked(self, request: GenerationRequest) -> float:
        """The length to ask a pipeline that cuts int(seconds * rate) samples: half a sample
        more than the exact count, so it comes out whole."""
        return (self.samples_for(request.params.duration_s) + 0.5) / self.sample_rate

    def batch_group(self, description: str, song: Song | None = None) -> int | None:
        """Rows whose texts have the same token length (padding leaks into the audio)."""
        return len(self._pipe.tokenizer(description)["input_ids"])

    def _run(
        self,
        batch: list[GenerationRequest],
        generators: list[torch.Generator],
        steps: int,
        step_done: Callable[[int], None],
    ) -> torch.Tensor:
        """The batch's audio [B, C, N] (N at least the requested length); `step_done(i)`
        after denoising step i (it raises `Stopped` to end the batch)."""
        raise NotImplementedError

    def generate(self, batch: list[GenerationRequest], sink: BatchSink) -> None:
        steps = self._options.diffusion_steps

        def step_done(step: int) -> None:
            sink.progress(step + 1, steps)
            if all(sink.is_cancelled(row) for row in range(len(batch))):
                raise Stopped

        generators = [
            torch.Generator(device=self._device).manual_seed(r.params.seed) for r in batch
        ]
        try:
            with torch.inference_mode():
                audio = self._run(batch, generators, steps, step_done)
        except Stopped:
            logger.info("every row of a %d-row batch was cancelled; denoising stopped", len(batch))
            return
        samples = self.samples_for(batch[0].params.duration_s)
        chunk = max(1, round(self._options.chunk_s * self.sample_rate))
        # a window's last sample may be lost to rounding: padded back
        clips = fitted(audio, samples).float().cpu().numpy()
        for row in range(len(batch)):
            for start in range(0, samples, chunk):
                if sink.is_cancelled(row):
                    break
                sink.emit(row, clips[row, :, start : start + chunk])
