"""ACE-Step (`AceStepPipeline`): songs with lyrics, 48 kHz stereo, up to 10 minutes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from composer.backends.diffusion.pipeline import PipelineBackend, fitted, on_step_end
from composer.generation import BackendOptions, GenerationRequest, Song, SourceAudio


class AceStepBackend(PipelineBackend):
    """ACE-Step: tags (the description) and lyrics in, a song out. Decoded in overlapping
    tiles (the VAE's own tiling: 512 latent frames, about 20 s, 64 of overlap on each side), so
    a 600 s song's decode takes a tile's memory, not the song's; the result is the whole
    decode's to float rounding (a test checks it)."""

    pipeline_class = "AceStepPipeline"

    def __init__(self, pipe: Any, options: BackendOptions) -> None:
        super().__init__(pipe, options)
        pipe.vae.enable_tiling()

    @property
    def sings(self) -> bool:
        return True

    @property
    def sample_rate(self) -> int:
        return int(self._pipe.sample_rate)

    @property
    def max_duration_s(self) -> float | None:
        """The silence latent the pipeline tiles is as long as the longest song (600 s)."""
        frames = self._pipe.condition_encoder.silence_latent.shape[1]
        return float(frames / self._pipe.latents_per_second)

    @property
    def audio_uses(self) -> tuple[str, ...]:
        """A cover is conditioned on the clip's semantic tokens: only a checkpoint converted
        with its audio tokenizer and detokenizer can make one."""
        pipe = self._pipe
        covers = pipe.audio_tokenizer is not None and pipe.audio_token_detokenizer is not None
        return ("reference", "cover", "repaint") if covers else ("reference", "repaint")

    @property
    def guided(self) -> bool:
        """Turbo checkpoints are guidance-distilled: the pipeline ignores a guidance scale."""
        return not self._pipe.is_turbo

    def batch_group(self, description: str, song: Song | None = None) -> int | None:
        song = song or Song()
        tokenizer = self._pipe.tokenizer
        lengths = (
            len(tokenizer(description)["input_ids"]),
            len(tokenizer(song.lyrics)["input_ids"]),
        )
        return hash((lengths, song.vocal_language, song.bpm, song.key, song.time_signature))

    def _run(
        self,
        batch: list[GenerationRequest],
        generators: list[torch.Generator],
        steps: int,
        step_done: Callable[[int], None],
    ) -> torch.Tensor:
        first = batch[0]
        song = first.song or Song()
        samples = self.samples_for(first.params.duration_s)
        clip = self._clip(first.source) if first.source is not None else None
        audio: torch.Tensor = self._pipe(
            **self._reuse(first.source, clip, samples),
            **on_step_end(step_done),
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
        ).audios
        return self._kept(audio, clip, first.source)

    def _reuse(
        self, source: SourceAudio | None, clip: torch.Tensor | None, samples: int
    ) -> dict[str, Any]:
        """The pipeline's arguments for a clip to reuse (a request with one is batched alone:
        the pipeline takes one clip per call). Cover and repaint work on the clip cut or padded
        to the requested length."""
        if source is None or clip is None:
            return {}
        clip = clip.to(self._pipe.vae.dtype)
        if source.use == "reference":
            return {"reference_audio": clip}
        clip = fitted(clip, samples)
        if source.use == "cover":
            return {
                "task_type": "cover",
                "src_audio": clip,
                "audio_cover_strength": source.strength,
            }
        return {
            "task_type": "repaint",
            "src_audio": clip,
            "repainting_start": source.start_s,
            "repainting_end": source.end_s,
        }


def beats_of(time_signature: str | None) -> str | None:
    """ACE-Step's time signature is the beats per bar: `3/4` -> `3`."""
    if not time_signature:
        return None
    return time_signature.split("/")[0].strip() or None
