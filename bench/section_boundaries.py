"""Section boundaries as the engine realises them, against the plan.

Random plans (section starts anywhere inside the clip, at least a second apart) run through
the engine on the tiny MusicGen (the real codec geometry: 32 kHz, 20 ms frames); each row's
text swaps are recorded with the audio frame they happen at. Prints the largest error between
a planned start and the realised one, in milliseconds and in codec frames (the target: at most
one frame), the number of boundaries, and the audio length against the plan.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.engine.loader import TransformersBackend  # noqa: E402
from composer.generation import (  # noqa: E402
    BackendOptions,
    GenerationParams,
    GenerationRequest,
    Section,
)
from composer.tiny.musicgen import build  # noqa: E402


class Count:
    """A listener that keeps the number of samples delivered."""

    def __init__(self) -> None:
        self.samples = 0
        self.cancelled = False

    def emit(self, samples: object) -> None:
        self.samples += int(samples.shape[1])

    def finish(self) -> None: ...

    def fail(self, error: BaseException) -> None:
        raise error


def swapped_at(backend: TransformersBackend, request: GenerationRequest) -> tuple[list[int], int]:
    """The audio frames at which the engine swapped the row's text, and the samples it made."""
    core = backend.engine(1)
    listener = Count()
    row = core.admit(request, listener, backend.condition(request))
    swaps: list[int] = []
    set_text = core.cache.set_text

    def recording(slot: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        swaps.append(row.done_frames)
        set_text(slot, keys, values)

    core.cache.set_text = recording  # type: ignore[method-assign]
    while core.rows:
        core.step()
    return swaps, listener.samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=12.0)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        model = build(Path(tmp) / "musicgen")
        backend = TransformersBackend.load(
            BackendOptions("transformers", str(model), window_s=4.0, extend_stride_s=2.0)
        )
        g = backend.geometry
        frame_s = g.hop / g.sample_rate
        worst, boundaries, length_errors = 0.0, 0, []
        for plan in range(args.plans):
            starts: list[float] = []
            t = 0.0
            while True:
                t += rng.uniform(1.0, 5.0)
                if t > args.seconds - 1.0:
                    break
                starts.append(round(t, 3))
            sections = tuple(Section(s, f"section {i}") for i, s in enumerate(starts))
            request = GenerationRequest(
                "calm pads", GenerationParams(args.seconds, seed=plan), sections=sections
            )
            swaps, samples = swapped_at(backend, request)
            realised = [f * frame_s for f in swaps]
            assert len(realised) == len(starts), (starts, realised)
            for planned, done in zip(starts, realised, strict=True):
                worst = max(worst, abs(planned - done))
            boundaries += len(starts)
            length_errors.append(abs(samples / g.sample_rate - args.seconds))
    print(f"{args.plans} plans, {boundaries} boundaries in {args.seconds:g} s clips")
    print(
        f"max boundary error: {worst * 1000:.1f} ms = {worst / frame_s:.2f} codec frames "
        f"(frame {frame_s * 1000:.0f} ms; target <= 1 frame)"
    )
    print(f"max length error: {max(length_errors) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
