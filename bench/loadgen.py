"""A bounded load on a running gateway: N concurrent `POST /generate`, every answer checked.

Used two ways: `tests/e2e/test_load.py` asserts correctness under load (only 200 and 429, every
200 a whole audio file, nothing leaked), and run directly it prints the figures recorded in
`bench/RESULTS.md`:

    .venv/gateway/bin/python bench/loadgen.py http://127.0.0.1:8000 --requests 50

Plain asyncio + httpx: one process drives every connection at once, which is all a loopback
test of a few dozen requests needs (locust's workers would only add start-up time).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import av
import httpx


@dataclass
class Outcome:
    status: int
    seconds: float
    audio_s: float | None = None
    """Decoded duration of a 200's body (None: not audio, or cut short)."""
    retry_after: str | None = None


@dataclass
class LoadReport:
    outcomes: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def statuses(self) -> Counter[int]:
        return Counter(o.status for o in self.outcomes)

    def summary(self) -> str:
        served = [o for o in self.outcomes if o.status == 200]
        lines = [
            f"requests: {len(self.outcomes)} in {self.wall_s:.1f} s; statuses: "
            + ", ".join(f"{s} x{n}" for s, n in sorted(self.statuses.items()))
        ]
        if served:
            seconds = sorted(o.seconds for o in served)
            audio = sum(o.audio_s or 0.0 for o in served)
            lines.append(
                f"200: p50 {statistics.median(seconds):.1f} s, max {seconds[-1]:.1f} s; "
                f"{audio:.0f} s of audio, {audio / self.wall_s:.2f} audio s per wall s"
            )
        return "\n".join(lines)


def audio_seconds(body: bytes) -> float | None:
    """The decoded length of an audio file, or None if it does not decode to the end."""
    try:
        with av.open(io.BytesIO(body), mode="r") as container:
            stream = container.streams.audio[0]
            samples = sum(frame.samples for frame in container.decode(stream))
            return samples / stream.rate
    except (av.error.FFmpegError, IndexError):
        return None


async def one(client: httpx.AsyncClient, url: str, data: dict[str, str]) -> Outcome:
    started = time.perf_counter()
    response = await client.post(f"{url}/generate", data=data)
    outcome = Outcome(response.status_code, time.perf_counter() - started)
    if response.status_code == 200:
        outcome.audio_s = audio_seconds(response.content)
    outcome.retry_after = response.headers.get("retry-after")
    return outcome


async def run_load(url: str, requests: int, duration_s: float = 1.0) -> LoadReport:
    """Send `requests` text-only generations at once; wait for every answer."""
    limits = httpx.Limits(max_connections=requests, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        started = time.perf_counter()
        outcomes = await asyncio.gather(
            *(
                one(client, url, {"prompt": f"load test {i}", "duration": str(duration_s)})
                for i in range(requests)
            )
        )
        return LoadReport(list(outcomes), time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--duration", type=float, default=1.0, help="audio seconds each")
    args = parser.parse_args()
    print(asyncio.run(run_load(args.url, args.requests, args.duration)).summary())


if __name__ == "__main__":
    main()
