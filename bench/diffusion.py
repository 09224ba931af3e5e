"""The diffusion composers (ACE-Step, Stable Audio Open, AudioLDM 2, Stable Audio 3), side by side.

Per model, on its tiny build (real audio geometry, tiny widths) through the composer's own
backend: seconds of compute per second of audio for a 10 s clip, a batch of 4 against the same
4 one after another, and the peak memory (max RSS of a fresh process) generating a short and the
longest allowed clip. `--real-shape` adds ACE-Step and Stable Audio 3 at their real sizes with
random weights: one denoiser step and one decode of 10 s, extrapolated to a whole clip and
labelled so (Stable Audio Open's real DiT takes over a minute a step on this CPU: only when
named, `--real-shape stable-audio`; bench/gpu/run.py --diffusion times all three on a GPU).

    python bench/diffusion.py [--seconds 10] [--steps 8] [--real-shape [ace-step,...]]
        [--models ace-step,...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services" / "composer"))
sys.path.insert(0, str(ROOT))

LONGEST = {"ace-step": 600.0, "stable-audio": 47.5, "audioldm2": 60.0, "stable-audio-3": 380.0}


def say(message: str) -> None:
    print(message, flush=True)  # noqa: T201


class Sink:
    """Counts steps and keeps nothing (the audio itself is not the point here)."""

    def __init__(self) -> None:
        self.steps = 0
        self.samples = 0

    def emit(self, row: int, samples: Any) -> None:
        self.samples += samples.shape[1]

    def is_cancelled(self, row: int) -> bool:
        return False

    def progress(self, step: int, total: int) -> None:
        self.steps += 1


def backend_of(model: Path, steps: int) -> Any:
    from composer.backends import load_backend
    from composer.generation import BackendOptions

    return load_backend(BackendOptions("diffusers", str(model), diffusion_steps=steps))


def requests(n: int, seconds: float) -> list[Any]:
    from composer.generation import GenerationParams, GenerationRequest, Song

    # one text for all: a batch group is one token length
    return [
        GenerationRequest(
            "pop, upbeat, warm vocals",
            GenerationParams(duration_s=seconds, seed=i),
            song=Song(lyrics="[verse]\nsoft notes in the morning light"),
        )
        for i in range(n)
    ]


def timed(backend: Any, batch: list[Any]) -> float:
    started = time.perf_counter()
    backend.generate(batch, Sink())
    return time.perf_counter() - started


def peak_rss_mb(model: Path, seconds: float, steps: int) -> float:
    """Max RSS of a fresh process that loads the model and makes one clip of `seconds`."""
    code = (
        "import sys, resource; sys.path[:0] = sys.argv[4:]; "
        "from bench.diffusion import backend_of, requests, Sink; from pathlib import Path; "
        "b = backend_of(Path(sys.argv[1]), int(sys.argv[3])); "
        "b.generate(requests(1, float(sys.argv[2])), Sink()); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    paths = [str(ROOT), str(ROOT / "services" / "composer")]
    out = subprocess.run(
        [sys.executable, "-c", code, str(model), str(seconds), str(steps), *paths],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.strip().splitlines()[-1]) / 1024


def tiny(
    kind: str, folder: Path, seconds: float, steps: int, longest_s: float | None = None
) -> dict[str, Any]:
    from composer.tiny.diffusion import BUILDERS

    model = BUILDERS[kind](folder / kind)
    backend = backend_of(model, steps)
    timed(backend, requests(1, 1.0))  # warm-up
    solo = timed(backend, requests(1, seconds))
    sequential = sum(timed(backend, [r]) for r in requests(4, seconds))
    batched = timed(backend, requests(4, seconds))
    longest = min(longest_s or LONGEST[kind], backend.max_duration_s or LONGEST[kind])
    return {
        "model": kind,
        "seconds_per_audio_second": solo / seconds,
        "batch4_s": batched,
        "sequential4_s": sequential,
        "batch4_speedup": sequential / batched,
        "peak_rss_mb_short": peak_rss_mb(model, seconds, steps),
        "peak_rss_mb_longest": peak_rss_mb(model, longest, steps),
        "longest_s": longest,
    }


def clock(device: str) -> Any:
    """A timer that waits for the device's queued work first."""
    import torch

    def synced() -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter()

    return synced


def head_of_line(kind: str, folder: Path, long_s: float, short_s: float) -> dict[str, Any]:
    """How long a short request takes when submitted just after a long one starts: on one
    model thread (it waits for the whole long one) and on two lanes (`Lanes`), side by side."""
    import asyncio

    from composer.backends.diffusion.pipeline import PipelineBackend
    from composer.scheduler import BatchScheduler, Lanes
    from composer.tiny.diffusion import BUILDERS

    backend = backend_of(BUILDERS[kind](folder / f"{kind}-lanes"), 8)
    assert isinstance(backend, PipelineBackend)
    twin = backend.sibling()
    timed(backend, requests(1, short_s))  # warm-up, both lengths
    timed(twin, requests(1, long_s))

    async def short_after_long(scheduler: Any) -> tuple[float, float]:
        await scheduler.start()
        started = time.perf_counter()
        long = scheduler.submit(requests(1, long_s)[0])
        await asyncio.sleep(0.2)
        submitted = time.perf_counter()
        async for _ in scheduler.submit(requests(1, short_s)[0]).chunks():
            pass
        short = time.perf_counter() - submitted
        async for _ in long.chunks():
            pass
        whole = time.perf_counter() - started
        await scheduler.stop()
        return short, whole

    one = asyncio.run(short_after_long(BatchScheduler(backend, 4, 0, 8)))
    two = asyncio.run(
        short_after_long(
            Lanes(BatchScheduler(backend, 4, 0, 8), BatchScheduler(twin, 4, 0, 8), long_s)
        )
    )
    return {
        "model": kind,
        "long_s": long_s,
        "short_s": short_s,
        "short_one_thread_s": one[0],
        "short_two_lanes_s": two[0],
        "short_speedup": one[0] / two[0],
        "both_one_thread_s": one[1],
        "both_two_lanes_s": two[1],
    }


@dataclass
class RealShape:
    """One diffusion composer built at its real sizes (random weights) on a device: one
    denoiser `step()` and one `decode()` of its latents, and the shapes they must return."""

    name: str
    denoiser: Any
    step: Callable[[], Any]
    decode: Callable[[], Any]
    step_shape: tuple[int, ...]
    audio_shape: tuple[int, ...]

    @property
    def params_b(self) -> float:
        return float(sum(p.numel() for p in self.denoiser.parameters())) / 1e9


def measured(shape: RealShape, steps: int, seconds: float, device: str) -> dict[str, Any]:
    """One step and one decode, each once (no warm-up: the CPU's times are steady), extrapolated
    to a clip of `steps` steps and `seconds` of audio. bench/gpu/run.py times them warm."""
    import torch

    synced = clock(device)
    with torch.inference_mode():
        started = synced()
        shape.step()
        step = synced() - started
        started = synced()
        shape.decode()
        decode = synced() - started
    total = steps * step + decode
    return {
        "model": f"{shape.name} real shape ({shape.params_b:.2f}B denoiser, random weights)",
        "denoiser_step_s": step,
        "decode_s": decode,
        "extrapolated_clip_s": total,
        "seconds_per_audio_second": total / seconds,
    }


ACE_STEP_XL = {
    "hidden_size": 2560,
    "intermediate_size": 9728,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "encoder_hidden_size": 2048,
}
"""The XL turbo DiT's class (the one `COMPOSER_MODEL` names in compose): 2560 wide, its
condition encoder 2048 wide; its published config is not reachable offline, so layers, heads
and the MLP follow the 4B-class layout (about 3.6B parameters)."""

OOBLECK_48K = {
    "encoder_hidden_size": 128,
    "downsampling_ratios": [2, 4, 4, 6, 10],
    "channel_multiples": [1, 2, 4, 8, 16],
    "decoder_channels": 128,
    "decoder_input_channels": 64,
    "audio_channels": 2,
    "sampling_rate": 48000,
}
"""ACE-Step's VAE: 48 kHz stereo, 1920 samples a latent frame."""


def real_shape_ace_step(
    seconds: float,
    device: str = "cpu",
    dtype: str = "float32",
    dit_sizes: Sizes = None,
    vae_sizes: Sizes = None,
) -> RealShape:
    """ACE-Step XL's DiT and its VAE (the VAE in float32, as the composer runs it)."""
    import torch
    from diffusers import AutoencoderOobleck
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel

    kind = getattr(torch, dtype)
    torch.manual_seed(0)
    sizes = dit_sizes if dit_sizes is not None else ACE_STEP_XL
    dit = AceStepTransformer1DModel(**sizes).eval().to(device, kind)
    vae = AutoencoderOobleck(**{**OOBLECK_48K, **(vae_sizes or {})}).eval().to(device)
    vae.enable_tiling()
    frames = round(seconds * 25)
    channels = int(dit.config.audio_acoustic_hidden_dim)
    latents = torch.randn(1, frames, channels, device=device, dtype=kind)
    context = torch.randn(1, frames, int(dit.config.in_channels) - channels, device=device)
    width = int(dit.config.encoder_hidden_size or dit.config.hidden_size)
    text = torch.randn(1, 300, width, device=device, dtype=kind)  # tags, lyrics, timbre
    ones = torch.ones(1, device=device, dtype=kind)
    samples = frames * int(np.prod(vae.config.downsampling_ratios))
    return RealShape(
        f"ace-step, {dtype}, {device}",
        dit,
        lambda: dit(
            hidden_states=latents,
            timestep=ones,
            timestep_r=ones,
            encoder_hidden_states=text,
            context_latents=context.to(kind),
            return_dict=False,
        )[0],
        lambda: vae.decode(latents.transpose(1, 2).float()).sample,
        step_shape=(1, frames, channels),
        audio_shape=(1, 2, samples),
    )


Sizes = dict[str, Any] | None
"""Config overrides for a real-shape function's denoiser or decoder (a test runs them small)."""


def real_shape_stable_audio(
    seconds: float,
    device: str = "cpu",
    dtype: str = "float32",
    dit_sizes: Sizes = None,
    vae_sizes: Sizes = None,
) -> RealShape:
    """Stable Audio Open's real DiT and Oobleck (the classes' defaults are 1.0's sizes, random
    weights): one guided step (a batch of two) over the whole 47.55 s window it always
    denoises, and one decode of that window; `seconds` only divides the cost."""
    import torch
    from diffusers import AutoencoderOobleck, StableAudioDiTModel
    from diffusers.models.embeddings import get_1d_rotary_pos_embed

    kind = getattr(torch, dtype)
    torch.manual_seed(0)
    dit = StableAudioDiTModel(**(dit_sizes or {})).eval().to(device, kind)
    vae = AutoencoderOobleck(**(vae_sizes or {})).eval().to(device)
    config = dit.config
    frames = int(config.sample_size)  # 1024 latent frames: 47.55 s at 44.1 kHz / 2048
    latents = torch.randn(2, config.in_channels, frames, device=device, dtype=kind)  # guided
    text = torch.randn(2, 130, config.cross_attention_input_dim, device=device, dtype=kind)
    global_states = torch.randn(2, 1, config.global_states_input_dim, device=device, dtype=kind)
    rotary = get_1d_rotary_pos_embed(
        dit.config.attention_head_dim // 2, frames + 1, use_real=True, repeat_interleave_real=False
    )
    rotary = tuple(r.to(device) for r in rotary)
    return RealShape(
        f"stable-audio, {dtype}, {device}",
        dit,
        lambda: dit(
            latents,
            torch.ones(1, device=device, dtype=kind),
            encoder_hidden_states=text,
            global_hidden_states=global_states,
            rotary_embedding=rotary,
            return_dict=False,
        )[0],
        lambda: vae.decode(latents[:1].float()).sample,
        step_shape=(2, int(config.out_channels), frames),
        audio_shape=(1, int(vae.config.audio_channels), frames * int(vae.hop_length)),
    )


def real_shape_stable_audio_3(
    seconds: float,
    device: str = "cpu",
    dtype: str = "float32",
    dit_sizes: Sizes = None,
    vae_sizes: Sizes = None,
) -> RealShape:
    """Stable Audio 3 medium's real DiT and SAME (the classes' defaults, random weights): one
    step (distilled: unguided) and the composer's windowed decode of `seconds`."""
    import math

    import torch
    from diffusers import AutoencoderSAME, StableAudio3DiTModel

    from composer.backends.diffusion.stable_audio_3 import decode_in_windows

    kind = getattr(torch, dtype)
    torch.manual_seed(0)
    dit = StableAudio3DiTModel(**(dit_sizes or {})).eval().to(device, kind)
    vae = AutoencoderSAME(**(vae_sizes or {})).eval().to(device)
    config = dit.config
    frames = math.ceil(seconds * vae.config.sampling_rate / vae.downsampling_ratio)
    latents = torch.randn(1, config.io_channels, frames, device=device, dtype=kind)
    text = torch.randn(1, 129, config.cond_token_dim, device=device, dtype=kind)  # + duration
    global_states = torch.randn(1, config.global_cond_dim, device=device, dtype=kind)
    channels = int(vae.config.audio_channels) if "audio_channels" in vae.config else 2
    return RealShape(
        f"stable-audio-3, {dtype}, {device}",
        dit,
        lambda: dit(
            latents,
            torch.ones(1, device=device, dtype=kind),
            encoder_hidden_states=text,
            global_hidden_states=global_states,
            return_dict=False,
        )[0],
        lambda: decode_in_windows(vae, latents.float()),
        step_shape=(1, int(config.io_channels), frames),
        audio_shape=(1, channels, frames * int(vae.downsampling_ratio)),
    )


REAL_SHAPES: dict[str, Callable[..., RealShape]] = {
    "ace-step": real_shape_ace_step,
    "stable-audio": real_shape_stable_audio,
    "stable-audio-3": real_shape_stable_audio_3,
}
"""The real shapes timed (AudioLDM 2's real UNet config is not the class default: left out)."""

SMALL_SIZES: dict[str, dict[str, Sizes]] = {
    "ace-step": {
        "dit_sizes": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 32,
            "encoder_hidden_size": 48,
        },
        "vae_sizes": {"encoder_hidden_size": 8, "decoder_channels": 8},
    },
    "stable-audio": {
        "dit_sizes": {
            "sample_size": 64,
            "num_layers": 1,
            "attention_head_dim": 8,
            "num_attention_heads": 2,
            "num_key_value_attention_heads": 1,
            "cross_attention_dim": 16,
            "time_proj_dim": 8,
            "global_states_input_dim": 32,
            "cross_attention_input_dim": 16,
        },
        "vae_sizes": {"decoder_channels": 4, "channel_multiples": [1, 1, 1, 1, 1]},
    },
    "stable-audio-3": {
        "dit_sizes": {
            "io_channels": 8,
            "embed_dim": 32,
            "depth": 1,
            "num_heads": 4,
            "cond_token_dim": 16,
            "global_cond_dim": 16,
            "local_add_cond_dim": 9,
            "timestep_features_dim": 16,
            "num_memory_tokens": 4,
        },
        "vae_sizes": {
            "encoder_channels": 16,
            "encoder_c_mults": (1,),
            "encoder_transformer_depths": (1,),
            "latent_dim": 8,
            "dim_heads": 8,
        },
    },
}
"""The real-shape code at small widths: what tests and `--shape tiny` run on the CPU."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--models", default="ace-step,stable-audio,audioldm2,stable-audio-3")
    parser.add_argument(
        "--real-shape",
        nargs="?",
        const="ace-step,stable-audio-3",
        default="",
        help="also time these real shapes (default: ace-step,stable-audio-3; stable-audio takes "
        "over a minute a step here)",
    )
    parser.add_argument("--longest", type=float, help="the long clip's seconds (default: max)")
    parser.add_argument(
        "--lanes",
        type=float,
        nargs=2,
        metavar=("LONG_S", "SHORT_S"),
        help="also time a short ACE-Step request behind a long one, one thread vs two lanes",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in [k for k in args.models.split(",") if k]:
            r = tiny(kind, Path(folder), args.seconds, args.steps, args.longest)
            results.append(r)
            say(
                f"{kind} (tiny): {r['seconds_per_audio_second']:.3f} s per audio s; "
                f"batch of 4 {r['batch4_s']:.2f} s vs 4 sequential {r['sequential4_s']:.2f} s "
                f"-> {r['batch4_speedup']:.2f}x; peak RSS {r['peak_rss_mb_short']:.0f} MB at "
                f"{args.seconds:g} s, {r['peak_rss_mb_longest']:.0f} MB at {r['longest_s']:g} s"
            )
        if args.lanes:
            r = head_of_line("ace-step", Path(folder), *args.lanes)
            results.append(r)
            say(
                f"ace-step (tiny) lanes: a {r['short_s']:g} s request behind a {r['long_s']:g} s "
                f"song took {r['short_one_thread_s']:.2f} s on one thread, "
                f"{r['short_two_lanes_s']:.2f} s on two lanes -> {r['short_speedup']:.1f}x sooner; "
                f"both done in {r['both_one_thread_s']:.2f} s vs {r['both_two_lanes_s']:.2f} s"
            )
    for name in [k for k in args.real_shape.split(",") if k]:
        if name not in REAL_SHAPES:
            parser.error(f"--real-shape: {name!r} is not one of {', '.join(REAL_SHAPES)}")
        seconds = 47.55 if name == "stable-audio" else args.seconds  # its whole window, always
        r = measured(REAL_SHAPES[name](seconds), args.steps, seconds, "cpu")
        results.append(r)
        say(
            f"{r['model']}: one step {r['denoiser_step_s']:.1f} s, decode of {seconds:g} s "
            f"{r['decode_s']:.1f} s -> extrapolated {args.steps} steps + decode "
            f"{r['extrapolated_clip_s']:.0f} s, {r['seconds_per_audio_second']:.1f} s per audio s"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
