"""GPU check of the composer's engine on MusicGen's real shapes, random weights, one script.

Needs only torch, transformers, numpy and sentencepiece (no FastAPI, no vLLM), so it runs on a
bare GPU machine with the working tree. For each model (musicgen-medium's shape, mono and
stereo, float16 on CUDA) it checks and prints:

- alone == joined mid-batch: the codes of a request run alone against the same request joining
  three others at step 10 (on a GPU, fp16 kernels may differ by batch size: the fraction of
  equal frames is printed rather than asserted);
- a 45 s request crossing the 30 s window while three others step: its exact length, finite;
- cancellation: step time with 8 rows, after one is cancelled, and with 7 from the start;
- steps/s per stream and in aggregate at batch 1/4/8/16, real-time factor (50 steps = 1 s of
  audio), first-chunk latency, peak GPU memory, and how many streams each keep 50 steps/s.

Melody rows step through the same code with a prefix (tests/composer/test_engine_melody.py)
and are not timed here. `--diffusion` adds the diffusion composers' real shapes (random
weights: ACE-Step, Stable Audio Open, Stable Audio 3): one denoiser step and one decode on the
device, extrapolated to a clip's real-time factor (it needs the diffusers wheel carried to the
machine; AudioLDM 2's real UNet config is not the class default, so it is left out). CI runs
it on the CPU at the tiny shape:

    python bench/gpu/run.py --device cpu --shape tiny --batches 1 2 --long-seconds 4 \
        --window-s 2 --stride-s 1
    python bench/gpu/run.py --cuda-graphs        # on the GPU: medium shape, fp16, CUDA
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "services" / "composer")]

from bench.engine_staggered import Timed, step_time  # noqa: E402
from bench.engine_staggered import cancellation as staggered_cancellation  # noqa: E402
from composer.backends import BackendOptions, GenerationParams, GenerationRequest  # noqa: E402
from composer.backends.streaming import undelay  # noqa: E402
from composer.backends.transformers import TransformersBackend  # noqa: E402
from composer.engine.musicgen import DTYPES, MusicgenStepModel  # noqa: E402
from composer.tiny_model import DESCRIPTIONS, build, musicgen_config, random_model  # noqa: E402


def load(shape: str, stereo: bool, args: argparse.Namespace, tmp: Path) -> TransformersBackend:
    """The tiny folder's tokenizer and processor, and a random model of `shape` built in place
    on the device (no multi-GB checkpoint written)."""
    from transformers import AutoProcessor

    folder = build(tmp / f"tiny-{'stereo' if stereo else 'mono'}", "tiny", stereo=stereo)
    processor = AutoProcessor.from_pretrained(folder)
    preset = "tiny" if shape == "tiny" else f"{shape}-shape"
    config = musicgen_config(preset, len(processor.tokenizer), stereo)
    with torch.device(args.device):
        model = random_model(config, seed=1234)
    model = model.to(DTYPES[args.dtype]).eval()
    name = f"musicgen-{'stereo-' if stereo else ''}{shape} (random weights)"
    options = BackendOptions(
        "transformers", name, args.device, args.dtype, args.window_s, args.stride_s
    )
    return TransformersBackend(MusicgenStepModel(model, processor.tokenizer, name, 512), options)


def request(i: int, seconds: float) -> GenerationRequest:
    return GenerationRequest(DESCRIPTIONS[i % len(DESCRIPTIONS)], GenerationParams(seconds, i))


def codes_of(backend: TransformersBackend, joined: bool) -> torch.Tensor:
    """Request 0's codes, alone or joining three others at step 10."""
    core = backend.engine(4)
    model = backend.model
    if joined:
        for i in (1, 2, 3):
            core.admit(request(i, 3.0), Timed(0.0), backend.condition(request(i, 3.0)))
        for _ in range(10):
            core.step()
    r = request(0, 1.0)
    row = core.admit(r, Timed(0.0), backend.condition(r))
    while row in core.rows:
        core.step()
    return undelay(row.grid[None], model.delays)[0, :, : backend.geometry.frames(1.0)]


def long_request(backend: TransformersBackend, seconds: float) -> dict[str, Any]:
    core = backend.engine(4)
    model = backend.model
    listeners = [Timed(0.0, keep=i == 0) for i in range(4)]
    for i, listener in enumerate(listeners):
        r = request(i, seconds if i == 0 else 5.0)
        core.admit(r, listener, backend.condition(r))
    while core.rows:
        core.step()
    audio = np.concatenate(listeners[0].audio, axis=1)
    return {
        "seconds": audio.shape[1] / model.sample_rate,
        "channels": audio.shape[0],
        "exact_length": audio.shape[1] == backend.samples_for(seconds),
        "finite": bool(np.isfinite(audio).all()),
    }


def throughput(
    backend: TransformersBackend, batch: int, steps: int, graphs: bool = False
) -> dict[str, float]:
    core = backend.engine(batch, cuda_graphs=graphs)
    for i in range(batch):
        r = request(i, 60.0)
        core.admit(r, Timed(0.0), backend.condition(r))
    step_time(core, 5)
    seconds = step_time(core, steps)
    per_stream = 1 / seconds
    return {
        "batch": batch,
        "step_ms": seconds * 1000,
        "steps_per_s_per_stream": per_stream,
        "steps_per_s_aggregate": batch * per_stream,
        "real_time_factor_per_stream": per_stream / 50,
    }


def first_chunk(backend: TransformersBackend) -> float:
    core = backend.engine(1)
    r = request(0, 5.0)
    started = time.perf_counter()
    listener = Timed(started)
    core.admit(r, listener, backend.condition(r))
    while listener.first is None:
        core.step()
    return listener.first - started


def cancellation(backend: TransformersBackend, rows: int) -> dict[str, float]:
    full, after, smaller = staggered_cancellation(backend, rows, 10)
    return {
        "rows": rows,
        "full_ms": full * 1e3,
        "after_cancel_ms": after * 1e3,
        "smaller_ms": smaller * 1e3,
    }


def check(backend: TransformersBackend, args: argparse.Namespace) -> dict[str, Any]:
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    alone, joined = codes_of(backend, False), codes_of(backend, True)
    equal_frames = (alone == joined).all(dim=0).float().mean().item()
    result: dict[str, Any] = {
        "model": backend.name,
        "alone_equals_joined": bool(torch.equal(alone, joined)),
        "equal_frames": equal_frames,
        "long": long_request(backend, args.long_seconds),
        "cancel": cancellation(backend, max(2, min(8, max(args.batches)))),
        "first_chunk_s": first_chunk(backend),
        "batches": [throughput(backend, b, args.steps) for b in args.batches],
    }
    if args.cuda_graphs:  # each bucket compiles and captures once (minutes) before timing
        result["graphs"] = [throughput(backend, b, args.steps, True) for b in args.graph_batches]
    fast = [b["batch"] for b in result["batches"] if b["steps_per_s_per_stream"] >= 50]
    result["streams_at_50_steps_per_s"] = max(fast, default=0)
    if cuda:
        result["peak_gpu_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return result


def report(result: dict[str, Any]) -> None:
    print(f"== {result['model']}")
    print(
        f"alone == joined mid-batch: {result['alone_equals_joined']} "
        f"({result['equal_frames']:.1%} of frames equal)"
    )
    long = result["long"]
    print(
        f"long request: {long['seconds']:.2f} s, {long['channels']} channel(s), "
        f"exact length {long['exact_length']}, finite {long['finite']}"
    )
    c = result["cancel"]
    print(
        f"cancel: {c['full_ms']:.1f} ms/step with {c['rows']} rows, {c['after_cancel_ms']:.1f} "
        f"after one is cancelled, {c['smaller_ms']:.1f} with {c['rows'] - 1} from the start"
    )
    print(f"first chunk: {result['first_chunk_s']:.3f} s")
    graphs = result.get("graphs", [])
    for kind, b in [("eager", b) for b in result["batches"]] + [("graphs", b) for b in graphs]:
        print(
            f"{kind} batch {b['batch']:>2}: {b['step_ms']:.1f} ms/step, "
            f"{b['steps_per_s_per_stream']:.1f} steps/s per stream "
            f"({b['real_time_factor_per_stream']:.2f}x real time), "
            f"{b['steps_per_s_aggregate']:.1f} aggregate"
        )
    print(f"streams each >= 50 steps/s: {result['streams_at_50_steps_per_s']}")
    if "peak_gpu_memory_gib" in result:
        print(f"peak GPU memory: {result['peak_gpu_memory_gib']:.2f} GiB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shape", default="medium", choices=["tiny", "small", "medium"])
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPES))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per batch size")
    parser.add_argument("--long-seconds", type=float, default=45.0)
    parser.add_argument("--window-s", type=float, default=30.0)
    parser.add_argument("--stride-s", type=float, default=18.0)
    parser.add_argument("--cuda-graphs", action="store_true", help="also time captured steps")
    parser.add_argument("--graph-batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--diffusion", action="store_true", help="also time the diffusion shapes")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    args.dtype = args.dtype or ("float16" if args.device.startswith("cuda") else "float32")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for stereo in (False, True):
            backend = load(args.shape, stereo, args, Path(tmp))
            results.append(check(backend, args))
            report(results[-1])
            del backend
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    if args.diffusion:
        results.extend(diffusion(args))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


def diffusion(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The diffusion composers' real-shape steps and decodes on the device (ACE-Step's 10 s,
    Stable Audio Open's whole 47.55 s window, Stable Audio 3's 10 s with the windowed decode),
    each extrapolated to 8 steps and a real-time factor."""
    try:
        import diffusers  # noqa: F401 - not on the GPU image unless its wheel is carried
    except ImportError as exc:
        print(f"== diffusion: skipped ({exc}; carry the diffusers wheel)")
        return [{"model": "diffusion", "skipped": str(exc)}]
    from bench.diffusion import REAL_SHAPES

    shape = 10.0
    results = []
    for name, timed in REAL_SHAPES.items():
        seconds = 47.55 if name == "stable-audio" else shape
        result = timed(seconds, 8, args.device, args.dtype)
        print(
            f"== {result['model']}: one step {result['denoiser_step_s'] * 1e3:.0f} ms, decode "
            f"of {seconds:g} s {result['decode_s'] * 1e3:.0f} ms -> 8 steps + decode "
            f"{result['extrapolated_clip_s']:.2f} s, real-time factor "
            f"{1 / result['seconds_per_audio_second']:.1f}x"
        )
        results.append(result)
    return results


if __name__ == "__main__":
    main()
