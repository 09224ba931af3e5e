"""Diffusion composers through diffusers pipelines: a whole clip per denoising, a batch at once.

A diffusion model denoises every row of a batch over the same steps and the same latent length,
so a batch forms at the start (the static `BatchScheduler`), and only requests that cannot change
each other's audio share one: the same duration and steps, the same song metadata (the pipeline
takes bpm, key and time signature once per call) and, for ACE-Step and AudioLDM 2, the same token
lengths (they pad to the batch's longest text, and the padding leaks into a row's audio; Stable
Audio Open and 3 pad every prompt to a fixed length, so any prompts share a batch). The audio
decoder runs in float32 whatever the denoiser's dtype. Each row has its own generator, so a seed
gives the same audio alone or batched. Progress is reported per denoising step; when every row
of a batch is cancelled the callback stops the pipeline at the next step. The audio exists only
once the last step is decoded; it is then streamed in chunks.

Served: ACE-Step (`AceStepPipeline`: songs with lyrics, 48 kHz stereo, up to 10 minutes),
Stable Audio Open (`StableAudioPipeline`: 44.1 kHz stereo, up to 47 s), AudioLDM 2
(`AudioLDM2Pipeline`: 16 kHz mono) and Stable Audio 3 (`StableAudio3Pipeline`: 44.1 kHz stereo,
up to 380 s, decoded in windows).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from composer.backends import (
    BackendOptions,
    BatchSink,
    GenerationRequest,
    MusicBackend,
    PlainModel,
    Song,
    SourceAudio,
)
from composer.engine.musicgen import DTYPES

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


def load_pipeline_backend(options: BackendOptions) -> MusicBackend:
    """The backend for whichever pipeline `options.model` holds."""
    kind = pipeline_class(options.model)
    if kind not in BACKENDS:
        served = ", ".join(sorted(BACKENDS))
        raise ValueError(f"{options.model}: a {kind} is not served (diffusers serves {served}).")
    return BACKENDS[kind].load(options)


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
        clip = None  # float32 as uploaded: a repaint pastes it back bit for bit
        if first.source is not None:
            clip = torch.from_numpy(first.source.samples).to(self._device)
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
        if first.source is not None and first.source.use == "repaint":
            assert clip is not None
            return kept_outside(audio, clip, first.source, self.sample_rate)
        return audio

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
        if source is None:
            guidance = first.params.guidance if self.guided else 1.0
            latents = self._pipe(**common, guidance_scale=guidance).audios
        else:  # a request with a clip is batched alone; its variants take no guidance
            clip = torch.from_numpy(source.samples).to(self._device)  # float32, pasted back
            audio = fitted(clip, samples)[None].to(self._pipe.vae.dtype)
            reuse: dict[str, Any] = {"audio": audio}
            if source.use == "cover":
                reuse["init_noise_level"] = max(self.least_noise, 1.0 - source.strength)
            else:
                reuse["mask_start_seconds"] = source.start_s
                reuse["mask_end_seconds"] = source.end_s
            latents = self._variants[source.use](**common, **reuse).audios
        decoded = decode_in_windows(self._pipe.vae, latents)[..., :samples].clamp(-1.0, 1.0)
        if source is not None and source.use in ("repaint", "continue"):
            return kept_outside(decoded, clip, source, self.sample_rate)
        return decoded


BACKENDS: dict[str, type[PipelineBackend]] = {
    backend.pipeline_class: backend
    for backend in (AceStepBackend, StableAudioBackend, AudioLDM2Backend, StableAudio3Backend)
}


def beats_of(time_signature: str | None) -> str | None:
    """ACE-Step's time signature is the beats per bar: `3/4` -> `3`."""
    if not time_signature:
        return None
    return time_signature.split("/")[0].strip() or None
