"""GPU check of the composer on its real shapes (random weights), in parts that each fit a
device command and each bring their figures back, with checks that fail the run.

Needs only torch, transformers, numpy and sentencepiece (no FastAPI, no vLLM; `--part
diffusion` also needs the diffusers wheel carried), so it runs on a bare GPU machine from the
working tree. Each part writes its JSON to `--out` and rewrites it after every measurement
(a run cut short still leaves what it measured), prints as it goes (unbuffered), and exits
non-zero when a check fails:

- `--part musicgen` (musicgen-medium's shape, mono and stereo, the eager engine): the engine's
  greedy tokens equal `model.generate`'s for the first `--agree-frames` frames; a row joining
  three others mid-batch equals its solo run for at least its first `--agree-frames` frames (on
  a GPU kernels are chosen by batch size, so a later difference is reported, not failed: the
  fraction of equal frames in its first second); no logits NaN or infinite; a 45 s request
  crossing the 30 s window has its exact length and finite audio. Then per batch size: steps/s
  per stream, real-time factor, host syncs and ATen ops per step (a dispatch mode on the model
  thread), first-chunk latency, peak memory, streams that keep 50 steps/s.
- `--part graphs` (mono): the fixed-shape step compiled and captured per batch size
  (`--graph-batches`), compile-and-capture time, steady steps/s; fails unless CUDA graphs were
  captured (`cudagraph_or_error`: a graph that cannot be captured raises). On the CPU it also
  measures `compiled_over_eager_step`: the compiled fixed-shape step's steady time over the
  eager one's at 8 slots on musicgen-medium's cache geometry (24 heads of 64, a 30 s window)
  with `--ratio-layers` layers, whatever `--shape` says.
- `--part diffusion`: ACE-Step (the XL turbo's shape, bfloat16 on CUDA), Stable Audio Open
  and Stable Audio 3 medium: a warm-up call, then the median of 3 of one denoiser step and of
  one decode, peak memory; fails when an output has the wrong shape or is not finite.

CI runs every part on the CPU at the tiny shape (tests/composer/test_bench.py); the device
commands are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "services" / "composer")]

from bench.dispatch_count import DispatchCount  # noqa: E402
from bench.engine_staggered import Timed, step_time  # noqa: E402
from composer.codec.streaming import undelay  # noqa: E402
from composer.dtypes import DTYPES  # noqa: E402
from composer.engine.core import EngineCore  # noqa: E402
from composer.engine.loader import TransformersBackend  # noqa: E402
from composer.engine.musicgen import MusicgenStepModel  # noqa: E402
from composer.generation import BackendOptions, GenerationParams, GenerationRequest  # noqa: E402
from composer.tiny.musicgen import build, musicgen_config, random_model  # noqa: E402
from composer.tiny.tokenizer import DESCRIPTIONS  # noqa: E402

STEPS_PER_AUDIO_SECOND = 50


class Report:
    """One part's figures, rewritten to `path` after every measurement; failed checks."""

    def __init__(self, path: Path | None, part: str, device: str, dtype: str) -> None:
        self.path = path
        self.figures: dict[str, Any] = {"part": part, "device": device, "dtype": dtype}
        self.failures: list[str] = []
        if device.startswith("cuda"):
            self.figures["device_name"] = torch.cuda.get_device_name(device)
        self.save()

    def record(self, key: str, value: Any) -> Any:
        self.figures[key] = value
        self.save()
        return value

    def check(self, ok: bool, message: str) -> None:
        """A check: a failure is printed, kept in the JSON and fails the run at its end."""
        print(f"check {'ok' if ok else 'FAILED'}: {message}")
        if not ok:
            self.failures.append(message)
            self.record("failures", self.failures)

    def save(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps(self.figures, indent=2, default=str))


def say(line: str) -> None:
    print(line, flush=True)


def synced(device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def peak_memory(device: torch.device) -> int:
    return int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else 0


# MusicGen


def load(
    shape: str, stereo: bool, args: argparse.Namespace, tmp: Path, **sizes: int
) -> TransformersBackend:
    """The tiny folder's tokenizer, and a random model of `shape` built in place on the device
    (no multi-GB checkpoint written); `sizes` override the preset's decoder sizes."""
    from transformers import AutoProcessor

    folder = build(tmp / f"tiny-{'stereo' if stereo else 'mono'}", "tiny", stereo=stereo)
    processor = AutoProcessor.from_pretrained(folder)
    preset = "tiny" if shape == "tiny" else f"{shape}-shape"
    config = musicgen_config(preset, len(processor.tokenizer), stereo)
    for key, value in sizes.items():
        setattr(config.decoder, key, value)
    with torch.device(args.device):
        model = random_model(config, seed=1234)
    model = model.to(DTYPES[args.dtype]).eval()
    name = f"musicgen-{'stereo-' if stereo else ''}{shape} (random weights)"
    options = BackendOptions(
        "transformers", name, args.device, args.dtype, args.window_s, args.stride_s
    )
    return TransformersBackend(MusicgenStepModel(model, processor.tokenizer, name, 512), options)


def request(i: int, seconds: float, greedy: bool = False) -> GenerationRequest:
    params = GenerationParams(seconds, i, temperature=0.0 if greedy else 1.0)
    return GenerationRequest(DESCRIPTIONS[i % len(DESCRIPTIONS)], params)


def finite_rows(core: EngineCore) -> bool:
    """Every active row's logits were finite so far (the engine's own per-slot flags)."""
    return bool(core._finite[: len(core.rows)].all())


def codes_of(backend: TransformersBackend, joined: bool, frames: int) -> tuple[torch.Tensor, bool]:
    """Request 0's first `frames` codes (greedy), alone or joining three others at step 10;
    and whether every logit stayed finite."""
    core = backend.engine(4)
    finite = True
    if joined:
        for i in (1, 2, 3):
            core.admit(request(i, 3.0), Timed(0.0), backend.condition(request(i, 3.0)))
        for _ in range(10):
            core.step()
    r = request(0, frames / STEPS_PER_AUDIO_SECOND, greedy=True)
    row = core.admit(r, Timed(0.0), backend.condition(r))
    while row in core.rows:
        finite &= finite_rows(core)
        core.step()
    return undelay(row.grid[None], backend.model.delays)[0, :, :frames], finite


def generate_codes(backend: TransformersBackend, frames: int) -> torch.Tensor:
    """What `model.generate` chooses greedily for request 0 (guided), undelayed: its token
    grid as the last step saw it (a stopping criterion that only looks)."""
    from transformers import StoppingCriteriaList

    model = backend.model
    r = request(0, frames / STEPS_PER_AUDIO_SECOND, greedy=True)
    inputs = model.tokenize(r.description).to(model.device)
    seen: list[torch.Tensor] = []

    def look(input_ids: torch.Tensor, scores: torch.Tensor, **_: object) -> torch.Tensor:
        seen.append(input_ids.clone())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)

    with torch.inference_mode():
        model.model.generate(
            **inputs,
            do_sample=False,
            guidance_scale=r.params.guidance,
            max_new_tokens=frames + max(model.delays),
            stopping_criteria=StoppingCriteriaList([look]),
        )
    ids = seen[-1].reshape(model.codebooks, -1)
    return undelay(ids[None], model.delays)[0, :, :frames]


def equal_prefix(a: torch.Tensor, b: torch.Tensor) -> int:
    """Frames from the start on which codes [K, F] agree in every codebook (of the frames
    both have)."""
    n = min(a.shape[-1], b.shape[-1])
    same = (a[:, :n] == b[:, :n]).all(dim=0).tolist()
    return same.index(False) if False in same else len(same)


def long_request(backend: TransformersBackend, seconds: float) -> dict[str, Any]:
    core = backend.engine(4)
    model = backend.model
    listeners = [Timed(0.0, keep=i == 0) for i in range(4)]
    finite = True
    for i, listener in enumerate(listeners):
        r = request(i, seconds if i == 0 else 5.0)
        core.admit(r, listener, backend.condition(r))
    while core.rows:
        finite &= finite_rows(core)
        core.step()
    audio = np.concatenate(listeners[0].audio, axis=1)
    return {
        "seconds": audio.shape[1] / model.sample_rate,
        "channels": audio.shape[0],
        "exact_length": audio.shape[1] == backend.samples_for(seconds),
        "finite": bool(np.isfinite(audio).all()) and finite,
    }


def filled(backend: TransformersBackend, batch: int, graphs: bool = False) -> EngineCore:
    """An engine with `batch` long requests admitted (its audio decoded on a thread, as
    served)."""
    core = backend.engine(batch, cuda_graphs=graphs, threaded_delivery=True)
    for i in range(batch):
        r = request(i, 120.0)
        core.admit(r, Timed(0.0), backend.condition(r))
    return core


def per_step_counts(core: EngineCore, steps: int = 5) -> dict[str, float]:
    """Host syncs and ATen ops per step, on this (the model) thread."""
    with DispatchCount() as count:
        for _ in range(steps):
            core.step()
    return {"host_syncs_per_step": count.syncs / steps, "aten_ops_per_step": count.total / steps}


def throughput(
    backend: TransformersBackend, batch: int, steps: int, graphs: bool = False
) -> dict[str, Any]:
    device = backend.model.device
    started = synced(device)
    core = filled(backend, batch, graphs)
    core.step()  # with graphs: compiles and warms up this bucket
    core.step()  # records the graph
    step_time(core, 3)
    ready_s = synced(device) - started
    started = synced(device)
    for _ in range(steps):
        core.step()
    seconds = (synced(device) - started) / steps
    result = {
        "batch": batch,
        "step_ms": seconds * 1000,
        "steps_per_s_per_stream": 1 / seconds,
        "steps_per_s_aggregate": batch / seconds,
        "real_time_factor_per_stream": 1 / seconds / STEPS_PER_AUDIO_SECOND,
        "finite": finite_rows(core),
        "ready_s": ready_s,
    }
    if not graphs:  # a dispatch mode would send the compiled step back to tracing
        result.update(per_step_counts(core))
    core.close()
    return result


def first_chunk(backend: TransformersBackend) -> float:
    core = backend.engine(1)
    r = request(0, 5.0)
    started = time.perf_counter()
    listener = Timed(started)
    core.admit(r, listener, backend.condition(r))
    while listener.first is None:
        core.step()
    return listener.first - started


def streams_at_50(batches: list[dict[str, Any]]) -> int:
    fast = [b["batch"] for b in batches if b["steps_per_s_per_stream"] >= 50]
    return max(fast, default=0)


def musicgen_model(backend: TransformersBackend, args: argparse.Namespace) -> dict[str, Any]:
    device = backend.model.device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    frames = args.agree_frames
    engine, finite = codes_of(backend, False, STEPS_PER_AUDIO_SECOND)
    reference = generate_codes(backend, frames)
    joined, joined_finite = codes_of(backend, True, STEPS_PER_AUDIO_SECOND)
    result: dict[str, Any] = {
        "model": backend.name,
        "generate_equal_frames": equal_prefix(engine[:, :frames], reference),
        "joined_equal_prefix_frames": equal_prefix(engine, joined),
        "joined_equal_fraction": float((engine == joined).all(dim=0).float().mean()),
        "logits_finite": finite and joined_finite,
    }
    say(f"== {backend.name}: {json.dumps(result)}")
    result["long"] = long_request(backend, args.long_seconds)
    say(f"long request: {json.dumps(result['long'])}")
    result["first_chunk_s"] = first_chunk(backend)
    result["batches"] = []
    for b in args.batches:
        result["batches"].append(throughput(backend, b, args.steps))
        say(f"eager batch {b}: {json.dumps(result['batches'][-1])}")
    result["streams_at_50_steps_per_s"] = streams_at_50(result["batches"])
    result["peak_memory_bytes"] = peak_memory(device)
    return result


def check_musicgen(report: Report, result: dict[str, Any], args: argparse.Namespace) -> None:
    name, frames = result["model"], args.agree_frames
    report.check(
        result["generate_equal_frames"] == frames,
        f"{name}: greedy engine == generate for the first {frames} frames "
        f"({result['generate_equal_frames']} equal)",
    )
    report.check(
        result["joined_equal_prefix_frames"] >= frames,
        f"{name}: a row joined mid-batch == its solo run for at least {frames} frames "
        f"({result['joined_equal_prefix_frames']} equal, "
        f"{result['joined_equal_fraction']:.0%} of its first second)",
    )
    finite = result["logits_finite"] and all(b["finite"] for b in result["batches"])
    report.check(finite, f"{name}: every logit finite")
    long = result["long"]
    report.check(
        long["exact_length"] and long["finite"],
        f"{name}: a {args.long_seconds:g} s request has its exact length and finite audio",
    )


def part_musicgen(args: argparse.Namespace, report: Report) -> None:
    models: list[dict[str, Any]] = report.record("models", [])
    with tempfile.TemporaryDirectory() as tmp:
        for stereo in (False, True):
            backend = load(args.shape, stereo, args, Path(tmp))
            result = musicgen_model(backend, args)
            models.append(result)
            report.save()
            check_musicgen(report, result, args)
            del backend
            if args.device.startswith("cuda"):
                torch.cuda.empty_cache()
    mono = models[0]
    report.record("batches", mono["batches"])
    report.record("streams_at_50_steps_per_s", mono["streams_at_50_steps_per_s"])
    report.record("peak_memory_bytes", max(m["peak_memory_bytes"] for m in models))
    report.record("graphs_captured", False)
    counts = {b["batch"]: b for b in mono["batches"]}
    report.record("host_syncs_per_step", {k: v["host_syncs_per_step"] for k, v in counts.items()})
    report.record("aten_ops_per_step", {k: v["aten_ops_per_step"] for k, v in counts.items()})


# Graphs


def compiled_over_eager(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    """The compiled fixed-shape step's steady time over the eager one's at each of
    `--ratio-slots`, on musicgen-medium's cache geometry (24 heads of 64, 1536 wide, a 30 s
    window) with `--ratio-layers` layers (the CPU cannot hold 48 in reasonable time)."""
    geometry = argparse.Namespace(**{**vars(args), "window_s": 30.0, "stride_s": 18.0})
    sizes = {"num_hidden_layers": args.ratio_layers, "hidden_size": 1536}
    sizes |= {"num_attention_heads": 24, "ffn_dim": 6144, "max_position_embeddings": 2048}
    backend = load("tiny", False, geometry, tmp, **sizes)
    results = []
    for slots in args.ratio_slots:
        times = {}
        for mode in ("eager", "compiled"):
            torch._dynamo.reset()
            core = backend.engine(slots, fixed_shapes=True, cuda_graphs=mode == "compiled")
            for i in range(slots):
                r = request(i, 60.0)
                core.admit(r, Timed(0.0), backend.condition(r))
            step_time(core, 3)  # compiles
            times[mode] = statistics.median(step_time(core, 3) for _ in range(3))
        results.append(
            {
                "layers": args.ratio_layers,
                "slots": slots,
                "eager_step_ms": times["eager"] * 1e3,
                "compiled_step_ms": times["compiled"] * 1e3,
                "compiled_over_eager_step": times["compiled"] / times["eager"],
            }
        )
        say(f"compiled over eager: {json.dumps(results[-1])}")
    return results


def graphs_were_captured(device: torch.device) -> bool:
    """On CUDA, cudagraph_or_error makes a graph that cannot be captured raise; a skip that
    slipped through would still be counted by Inductor."""
    from torch._dynamo.utils import counters

    return device.type == "cuda" and not counters["inductor"]["cudagraph_skips"]


def part_graphs(args: argparse.Namespace, report: Report) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if args.device == "cpu":
            ratios = report.record("compiled_over_eager", compiled_over_eager(args, Path(tmp)))
            report.record("compiled_over_eager_step", ratios[0]["compiled_over_eager_step"])
        backend = load(args.shape, False, args, Path(tmp))
        device = backend.model.device
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        batches: list[dict[str, Any]] = report.record("batches", [])
        for b in args.graph_batches:
            torch._dynamo.reset()
            try:
                batches.append(throughput(backend, b, args.steps, graphs=True))
            except Exception as exc:  # noqa: BLE001 - a failed capture is this check's finding
                report.check(False, f"graphs at batch {b}: {type(exc).__name__}: {exc}")
                continue
            report.save()
            say(f"graphs batch {b}: {json.dumps(batches[-1])}")
            report.check(batches[-1]["finite"], f"graphs batch {b}: every logit finite")
        core = filled(backend, 1)
        report.record("host_syncs_per_step", per_step_counts(core)["host_syncs_per_step"])
        core.close()
        report.record("aten_ops_per_step", None)  # the compiled step runs outside the mode
        report.record("streams_at_50_steps_per_s", streams_at_50(batches))
        report.record("peak_memory_bytes", peak_memory(device))
        captured = report.record("graphs_captured", graphs_were_captured(device))
        if device.type == "cuda":
            report.check(captured, "CUDA graphs were captured for every bucket")


# Diffusion


def timed(call: Callable[[], Any], device: str) -> tuple[float, Any]:
    """A warm-up call, then the median of 3 (seconds on the device); the last output."""
    run = torch.device(device)
    with torch.inference_mode():
        out = call()
        times = []
        for _ in range(3):
            started = synced(run)
            out = call()
            times.append(synced(run) - started)
    return statistics.median(times), out


def part_diffusion(args: argparse.Namespace, report: Report) -> None:
    try:
        import diffusers  # noqa: F401 - not on the GPU image unless its wheel is carried
    except ImportError as exc:
        report.check(False, f"diffusers is importable (carry its wheel): {exc}")
        return
    from bench.diffusion import REAL_SHAPES, SMALL_SIZES

    device = torch.device(args.device)
    models: list[dict[str, Any]] = report.record("models", [])
    for name, shape in REAL_SHAPES.items():
        seconds = 47.55 if name == "stable-audio" else args.diffusion_seconds
        dtype = "bfloat16" if name == "ace-step" and device.type == "cuda" else args.dtype
        sizes = SMALL_SIZES[name] if args.shape == "tiny" else {}
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        built = shape(seconds, args.device, dtype, **sizes)
        step_s, step_out = timed(built.step, args.device)
        decode_s, audio = timed(built.decode, args.device)
        total = 8 * step_s + decode_s
        result = {
            "model": built.name,
            "dtype": dtype,
            "seconds": seconds,
            "denoiser_step_s": step_s,
            "decode_s": decode_s,
            "clip_s_at_8_steps": total,
            "real_time_factor": seconds / total,
            "peak_memory_bytes": peak_memory(device),
            "step_shape": list(step_out.shape),
            "audio_shape": list(audio.shape),
        }
        models.append(result)
        report.save()
        say(f"== {json.dumps(result)}")
        report.check(
            tuple(step_out.shape) == built.step_shape and bool(torch.isfinite(step_out).all()),
            f"{name}: the denoiser's output is {built.step_shape} and finite",
        )
        report.check(
            tuple(audio.shape) == built.audio_shape and bool(torch.isfinite(audio).all()),
            f"{name}: the decoded audio is {built.audio_shape} and finite",
        )
        del built, step_out, audio
        if device.type == "cuda":
            torch.cuda.empty_cache()
    report.record("peak_memory_bytes", max(m["peak_memory_bytes"] for m in models))
    report.record("graphs_captured", False)
    report.record("batches", [])
    report.record("streams_at_50_steps_per_s", None)
    report.record("host_syncs_per_step", None)
    report.record("aten_ops_per_step", None)


PARTS = {"musicgen": part_musicgen, "graphs": part_graphs, "diffusion": part_diffusion}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", required=True, choices=sorted(PARTS))
    parser.add_argument("--out", type=Path, help="the part's JSON (rewritten as it goes)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--shape", default="medium", choices=["tiny", "small", "medium"])
    parser.add_argument("--dtype", default=None, choices=sorted(DTYPES))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16, 32, 48, 64])
    parser.add_argument("--graph-batches", type=int, nargs="+", default=[1, 48])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per batch size")
    parser.add_argument("--agree-frames", type=int, default=10)
    parser.add_argument("--long-seconds", type=float, default=45.0)
    parser.add_argument("--window-s", type=float, default=30.0)
    parser.add_argument("--stride-s", type=float, default=18.0)
    parser.add_argument("--ratio-layers", type=int, default=4)
    parser.add_argument("--ratio-slots", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--diffusion-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    args.dtype = args.dtype or ("float16" if args.device.startswith("cuda") else "float32")
    report = Report(args.out, args.part, args.device, args.dtype)
    PARTS[args.part](args, report)
    report.record("failures", report.failures)
    say(f"{args.part}: {len(report.failures)} check(s) failed" if report.failures else "all ok")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
