"""Composer benchmark, through the real service over HTTP, measured side by side in one run.

1. Throughput (audio seconds per wall second) of N concurrent requests with batching on
   (max batch N) versus off (max batch 1): two service processes on the same model, one after
   the other.
2. Time to first audio versus total time for one clip (default 10 s).

The model is the tiny MusicGen by default (CI-sized); `--preset small-shape` builds the real
musicgen-small architecture with random weights (2.3 GB; minutes per run on a CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composer.tiny.musicgen import build  # noqa: E402
from tooling.supervise import free_port, run_service  # noqa: E402


async def one(client: httpx.AsyncClient, seconds: float, seed: int) -> tuple[float, float]:
    """(time to the first audio bytes after the header, total time) for one request."""
    started = time.perf_counter()
    first = None
    data = {"description": f"lofi beat {seed}", "duration": str(seconds), "seed": str(seed)}
    async with client.stream("POST", "/v1/compose", data=data) as response:
        response.raise_for_status()
        received = 0
        async for piece in response.aiter_raw():
            received += len(piece)
            if first is None and received > 44:  # past the WAV header
                first = time.perf_counter() - started
    return first or 0.0, time.perf_counter() - started


async def concurrent(url: str, n: int, seconds: float) -> float:
    async with httpx.AsyncClient(base_url=url, timeout=3600) as client:
        started = time.perf_counter()
        await asyncio.gather(*(one(client, seconds, i) for i in range(n)))
        return time.perf_counter() - started


def serve(model: Path, batch: int, logs: Path) -> object:
    port = free_port()
    env = {
        "COMPOSER_MODEL": str(model),
        "COMPOSER_PORT": str(port),
        "COMPOSER_MAX_BATCH_SIZE": str(batch),
        "COMPOSER_BATCH_WINDOW_MS": "100",
        "COMPOSER_LOG_LEVEL": "WARNING",
    }
    return run_service("composer", env, logs / f"composer-batch{batch}.log", port, 900)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", choices=["tiny", "small-shape"])
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="audio per concurrent request")
    parser.add_argument("--clip", type=float, default=10.0, help="clip for first-audio timing")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    with tempfile.TemporaryDirectory() as tmp:
        model = build(Path(tmp) / "musicgen", args.preset)
        results = {}
        for batch in (args.concurrent, 1):
            with serve(model, batch, Path(tmp)) as service:  # type: ignore[attr-defined]
                asyncio.run(concurrent(service.url, 1, 1.0))  # warm-up
                wall = asyncio.run(concurrent(service.url, args.concurrent, args.seconds))
                results[batch] = args.concurrent * args.seconds / wall
                if batch == 1:

                    async def clip(url: str = service.url) -> tuple[float, float]:
                        async with httpx.AsyncClient(base_url=url, timeout=3600) as client:
                            return await one(client, args.clip, 0)

                    first, total = asyncio.run(clip())

    on, off = results[args.concurrent], results[1]
    threads = os.environ.get("OMP_NUM_THREADS", "all")
    print(f"model: {args.preset} MusicGen (random weights), torch threads: {threads}")
    print(f"{args.concurrent} concurrent x {args.seconds:g} s, audio s per wall s:")
    print(f"  batching on (max batch {args.concurrent}): {on:.2f}")
    print(f"  batching off (max batch 1):  {off:.2f}")
    print(f"  ratio on / off: {on / off:.2f}x")
    print(
        f"{args.clip:g} s clip: first audio {first:.2f} s, total {total:.2f} s, "
        f"first / total = {100 * first / total:.0f} %"
    )


if __name__ == "__main__":
    main()
