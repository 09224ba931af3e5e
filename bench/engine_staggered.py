"""Composer engine benchmark: staggered arrivals under three scheduling policies, one run.

N requests of S seconds arrive one every G seconds (wall clock). The same engine core and model
serve them under each policy, one policy after the other:

- continuous: a request joins the running batch at the next step (the composer's engine);
- static: a batch is formed from whatever has arrived when the model is idle, and runs until
  every row is done (what the composer did before, and what most MusicGen servers do);
- one at a time: a single slot.

Printed per policy: p50 and p95 time to first audio, audio seconds per wall second, and the
ratios the engine is judged by (p95 first audio against a solo request's, throughput against
static). Then a cancelled row: step time with B rows, and after one of them is cancelled.

`--peer` adds the baseline of the research demos and audiocraft's own: `MusicGen.generate`
called per request (audiocraft, same shape, random weights), against the engine serving the N
requests all at once (`burst`); `--parts` picks what to run.

    python bench/engine_staggered.py [--preset tiny|small-shape] [--requests 8] [--seconds 10]
        [--peer] [--parts policies,burst,cancel]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.engine.core import EngineCore  # noqa: E402
from composer.engine.loader import TransformersBackend  # noqa: E402
from composer.generation import BackendOptions, GenerationParams, GenerationRequest  # noqa: E402
from composer.tiny.musicgen import build  # noqa: E402
from composer.tiny.tokenizer import DESCRIPTIONS  # noqa: E402


@dataclass
class Timed:
    """A row's listener that notes when its first audio came and when it finished."""

    arrived: float
    first: float | None = None
    done: float | None = None
    samples: int = 0
    cancel: bool = False
    keep: bool = False
    """Keep the audio itself (in `audio`), not just its length."""
    audio: list[npt.NDArray[np.float32]] = field(default_factory=list)

    @property
    def cancelled(self) -> bool:
        return self.cancel

    def emit(self, samples: npt.NDArray[np.float32]) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.samples += samples.shape[1]
        if self.keep:
            self.audio.append(samples)

    def finish(self) -> None:
        self.done = time.perf_counter()

    def fail(self, error: BaseException) -> None:
        raise error


def serve(
    backend: TransformersBackend, policy: str, slots: int, n: int, seconds: float, gap: float
) -> list[Timed]:
    """Run the workload under `policy`; returns every request's timings."""
    core = backend.engine(1 if policy == "one at a time" else slots)
    requests = [
        GenerationRequest(DESCRIPTIONS[i % len(DESCRIPTIONS)], GenerationParams(seconds, seed=i))
        for i in range(n)
    ]
    texts = [backend.condition(r) for r in requests]
    start = time.perf_counter()
    timings = [Timed(arrived=start + i * gap) for i in range(n)]
    admitted = 0
    while admitted < n or core.rows:
        now = time.perf_counter()
        arrived = sum(1 for t in timings if t.arrived <= now)
        may_join = policy != "static" or not core.rows
        while may_join and admitted < arrived and core.free_slots:
            core.admit(requests[admitted], timings[admitted], texts[admitted])
            admitted += 1
        if not core.rows:
            time.sleep(max(0.0, timings[admitted].arrived - time.perf_counter()))
            continue
        core.step()
    return timings


def summary(timings: list[Timed], seconds: float) -> dict[str, float]:
    ttfa = sorted((t.first or 0) - t.arrived for t in timings)
    makespan = max(t.done or 0 for t in timings) - timings[0].arrived
    return {
        "p50": statistics.median(ttfa),
        "p95": ttfa[min(len(ttfa) - 1, round(0.95 * (len(ttfa) - 1)))],
        "throughput": len(timings) * seconds / makespan,
    }


def step_time(core: EngineCore, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        core.step()
    return (time.perf_counter() - started) / steps


def cancellation(backend: TransformersBackend, rows: int, steps: int) -> tuple[float, float, float]:
    """Step time with `rows` rows, after one is cancelled, and with `rows - 1` from the start."""

    def fill(count: int) -> tuple[EngineCore, list[Timed]]:
        core = backend.engine(rows)
        listeners = [Timed(arrived=0.0) for _ in range(count)]
        for i, listener in enumerate(listeners):
            r = GenerationRequest(DESCRIPTIONS[i], GenerationParams(60.0, seed=i))
            core.admit(r, listener, backend.condition(r))
        step_time(core, 3)  # warm
        return core, listeners

    core, listeners = fill(rows)
    full = step_time(core, steps)
    listeners[0].cancel = True
    after = step_time(core, steps)
    smaller, _ = fill(rows - 1)
    return full, after, step_time(smaller, steps)


def peer_baseline(preset: str, seconds: float, folder: Path) -> float:
    """audiocraft's `MusicGen.generate`, one request after another (what the original WeaveWave
    and audiocraft's demo do): audio seconds per wall second. Call before anything imports
    transformers: the builder points the hub cache at its tiny T5."""
    from composer.tiny.audiocraft import build as build_audiocraft

    build_audiocraft(folder, preset=preset)
    from composer.backends.audiocraft_compat import install

    install()
    from audiocraft.models import MusicGen

    from composer.backends.audiocraft import omegaconf_globals

    with torch.serialization.safe_globals(omegaconf_globals()):  # the hub packages' pickles
        model = MusicGen.get_pretrained(str(folder), device="cpu")
    model.set_generation_params(duration=0.2)
    model.generate([DESCRIPTIONS[0]])  # warm-up
    model.set_generation_params(duration=seconds, top_k=250, cfg_coef=3.0)
    started = time.perf_counter()
    model.generate([DESCRIPTIONS[1]])
    return seconds / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small-shape"])
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="audio per request")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between arrivals")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--cancel-rows", type=int, default=4, help="rows in the cancel check")
    parser.add_argument("--peer", action="store_true", help="audiocraft's generate per request")
    parser.add_argument("--parts", default="policies,burst,cancel")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        peer = peer_baseline(args.preset, args.seconds, Path(tmp) / "ac") if args.peer else None
        model = build(Path(tmp) / "musicgen", args.preset)
        backend = TransformersBackend.load(BackendOptions("transformers", str(model)))
    print(
        f"{args.preset}: {args.requests} requests of {args.seconds:g} s, one every "
        f"{args.gap:g} s, {args.slots} slots, 1 thread"
    )
    alone = summary(serve(backend, "continuous", 1, 1, args.seconds, 0.0), args.seconds)
    print(f"solo request: first audio {alone['p50']:.2f} s, {alone['throughput']:.3f} audio s/s")
    if "policies" in parts:
        policies(backend, args, alone)
    if "burst" in parts:
        timings = serve(backend, "continuous", args.slots, args.requests, args.seconds, 0.0)
        burst = summary(timings, args.seconds)["throughput"]
        print(f"burst of {args.requests}: {burst:.3f} audio s/s through the engine")
        if peer is not None:
            print(
                f"audiocraft MusicGen.generate per request: {peer:.3f} audio s/s; "
                f"engine / peer: {burst / peer:.2f}x (target >= 3x)"
            )
    if "cancel" in parts:
        rows = max(2, min(args.slots, args.cancel_rows))
        full, after, smaller = cancellation(backend, rows, 10)
        print(
            f"cancel: step {full * 1000:.1f} ms with {rows} rows, {after * 1000:.1f} ms after "
            f"one is cancelled, {smaller * 1000:.1f} ms with {rows - 1} from the start "
            f"(after / smaller {after / smaller:.2f}x)"
        )


def policies(
    backend: TransformersBackend, args: argparse.Namespace, alone: dict[str, float]
) -> None:
    results = {}
    for policy in ("continuous", "static", "one at a time"):
        timings = serve(backend, policy, args.slots, args.requests, args.seconds, args.gap)
        results[policy] = r = summary(timings, args.seconds)
        print(
            f"{policy:>14}: first audio p50 {r['p50']:.2f} s, p95 {r['p95']:.2f} s; "
            f"{r['throughput']:.3f} audio s/s"
        )
    c, s, o = results["continuous"], results["static"], results["one at a time"]
    print(f"p95 first audio / solo: {c['p95'] / alone['p50']:.2f}x (target <= 2x)")
    print(
        f"throughput continuous / static: {c['throughput'] / s['throughput']:.2f}x "
        f"(target >= 1.2x); / one at a time: {c['throughput'] / o['throughput']:.2f}x"
    )
    print(f"p95 first audio static / continuous: {s['p95'] / c['p95']:.1f}x")


if __name__ == "__main__":
    main()
