"""Stable Audio 3 (`StableAudio3Pipeline`): 44.1 kHz stereo, up to 380 s, decoded in windows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from composer.backends.diffusion.pipeline import PipelineBackend, fitted, on_step_end
from composer.generation import BackendOptions, GenerationRequest, Song

DECODE_WINDOW = 256
"""Latent frames a Stable Audio 3 decode takes at once (about 24 s at 44.1 kHz)."""


def decode_in_windows(vae: Any, latents: torch.Tensor, window: int = DECODE_WINDOW) -> torch.Tensor:
    """SAME's decode of latents [B, D, L] one window at a time, so memory stays bounded.

    Its decoder attends through a sliding-window band mask built dense over the whole sequence
    (N x N: 6 GB at 120 s, 63 GB at 380 s). Attention is local, so each window is decoded with
    enough neighbouring latents on both sides to cover the decoder's reach (its depth times its
    band) and only its own span is kept: the result is the whole-clip decode's, to float
    rounding (a test checks it), at a window's cost."""
    config = vae.config
    reach = int(config.sliding_window) * int(sum(config.encoder_transformer_depths)) + 1
    margin = max(8, 2 * reach)
    ratio = int(vae.downsampling_ratio)
    length = int(latents.shape[-1])
    pieces = []
    for start in range(0, length, window):
        end = min(length, start + window)
        lo, hi = max(0, start - margin), min(length, end + margin)
        audio = vae.decode(latents[..., lo:hi]).sample
        pieces.append(audio[..., (start - lo) * ratio : (end - lo) * ratio])
    return torch.cat(pieces, dim=-1)


class StableAudio3Backend(PipelineBackend):
    """Stable Audio 3: 44.1 kHz stereo, up to 380 s (medium; the small checkpoint is made for
    120 s: set `COMPOSER_MAX_DURATION_S`). The distilled checkpoints bake guidance in (8
    ping-pong steps); the base one uses `guidance`. Decoded in windows (`decode_in_windows`).

    A clip is reused with the checkpoint's two other pipelines (the same modules): a `cover`
    is audio-to-audio (the clip's latents noised to `1 - cover_strength`, then denoised), a
    `repaint` or a `continue` is inpainting (the span made anew is masked; for `continue`,
    everything after the clip), with the kept audio pasted back bit for bit."""

    pipeline_class = "StableAudio3Pipeline"

    def batch_group(self, description: str, song: Song | None = None) -> int | None:
        """Any two prompts: the pipeline pads every prompt to its `max_length`."""
        return None

    longest_s = 380.0
    least_noise = 0.05
    """A cover's smallest noise level (the pipeline needs some): at strength 1, nearly the clip."""

    def __init__(self, pipe: Any, options: BackendOptions) -> None:
        super().__init__(pipe, options)
        import diffusers

        variation = diffusers.StableAudio3AudioToAudioPipeline(**pipe.components)
        inpainting = diffusers.StableAudio3InpaintPipeline(**pipe.components)
        for variant in (variation, inpainting):
            variant.set_progress_bar_config(disable=True)
        self._variants = {"cover": variation, "repaint": inpainting, "continue": inpainting}

    @property
    def max_duration_s(self) -> float | None:
        return min(self.longest_s, float(self._pipe.duration_embedder.config.max_val))

    @property
    def audio_uses(self) -> tuple[str, ...]:
        return ("cover", "repaint", "continue")

    @property
    def guided(self) -> bool:
        return not bool(self._pipe.scheduler.config.stochastic_sampling)

    def _run(
        self,
        batch: list[GenerationRequest],
        generators: list[torch.Generator],
        steps: int,
        step_done: Callable[[int], None],
    ) -> torch.Tensor:
        first = batch[0]
        samples = self.samples_for(first.params.duration_s)
        common = {
            **on_step_end(step_done),
            "prompt": [r.description for r in batch],
            "duration": self._seconds_asked(first),
            "num_inference_steps": steps,
            "generator": generators,
            "output_type": "latent",
        }
        source = first.source
        clip = self._clip(source) if source is not None else None
        if source is None or clip is None:
            guidance = first.params.guidance if self.guided else 1.0
            latents = self._pipe(**common, guidance_scale=guidance).audios
        else:  # its variants take no guidance
            audio = fitted(clip, samples)[None].to(self._pipe.vae.dtype)
            reuse: dict[str, Any] = {"audio": audio}
            if source.use == "cover":
                reuse["init_noise_level"] = max(self.least_noise, 1.0 - source.strength)
            else:
                reuse["mask_start_seconds"] = source.start_s
                reuse["mask_end_seconds"] = source.end_s
            latents = self._variants[source.use](**common, **reuse).audios
        decoded = decode_in_windows(self._pipe.vae, latents)[..., :samples].clamp(-1.0, 1.0)
        return self._kept(decoded, clip, source)
