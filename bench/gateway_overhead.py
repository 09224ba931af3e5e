"""The gateway's own cost, measured side by side in one run on the tiny models.

1. Latency of POST /generate through the gateway versus calling the captioner and then the
   composer directly (the same work without the gateway): p50 and p99 over N requests.
2. The gateway's resident memory while a 500 MB upload streams through it (the target is less
   than +50 MB over its idle baseline): the file is spooled to disk, never held in memory.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.media_factory import image_bytes  # noqa: E402
from tooling.supervise import free_port, run_service  # noqa: E402

MB = 1024 * 1024


def python_of(service: str) -> str:
    return str(REPO / ".venv" / service / "bin" / "python")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(call: object, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--upload-mb", type=int, default=500)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    picture = image_bytes(320, 240)
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        for service, name in (("captioner", "vlm"), ("composer", "musicgen")):
            subprocess.run(
                [python_of(service), "-m", f"{service}.tiny", str(root / name)],
                check=True,
                capture_output=True,
            )
        ports = {s: free_port() for s in ("captioner", "composer", "gateway")}
        big = str(args.upload_mb + 100) + "000000"
        envs = {
            "captioner": {
                "CAPTIONER_MODEL": str(root / "vlm"),
                "CAPTIONER_ENFORCE_EAGER": "1",
                "CAPTIONER_MAX_MODEL_LEN": "4096",
                "CAPTIONER_CPU_KV_CACHE_GIB": "1",
                "CAPTIONER_MAX_TOKENS": "32",
                "CAPTIONER_MAX_VIDEO_BYTES": big,
                "CAPTIONER_MAX_REQUEST_BYTES": big,
                "CAPTIONER_LOG_LEVEL": "WARNING",
                "VLLM_CPU_OMP_THREADS_BIND": "nobind",
            },
            "composer": {"COMPOSER_MODEL": str(root / "musicgen"), "COMPOSER_LOG_LEVEL": "WARNING"},
            "gateway": {
                "GATEWAY_MAX_VIDEO_BYTES": big,
                "GATEWAY_MAX_REQUEST_BYTES": big,
                "GATEWAY_LOG_LEVEL": "WARNING",
                "GATEWAY_RATE_LIMIT_PER_MINUTE": "100000",
                "GATEWAY_CAPTIONER_URL": f"http://127.0.0.1:{ports['captioner']}",
                "GATEWAY_COMPOSER_URL": f"http://127.0.0.1:{ports['composer']}",
            },
        }
        running = {}
        for service in ("captioner", "composer", "gateway"):
            env = {**envs[service], f"{service.upper()}_PORT": str(ports[service])}
            running[service] = stack.enter_context(
                run_service(
                    service, env, root / f"{service}.log", ports[service], python=python_of(service)
                )
            )
        gw, cap, comp = (running[s].url for s in ("gateway", "captioner", "composer"))
        client = stack.enter_context(httpx.Client(timeout=600))
        files = [("images", ("a.png", picture, "image/png"))]
        form = {"prompt": "calm sea", "duration": "1", "seed": "1"}

        def through_gateway() -> None:
            client.post(f"{gw}/generate", data=form, files=files).raise_for_status()

        def direct() -> None:
            brief = client.post(f"{cap}/v1/describe", data={"prompt": "calm sea"}, files=files)
            brief.raise_for_status()
            client.post(
                f"{comp}/v1/compose",
                data={"description": brief.json()["description"], "duration": "1", "seed": "1"},
            ).raise_for_status()

        for warm in (through_gateway, direct):
            warm()
        via, straight = [], []
        for _ in range(args.requests):  # interleaved, so drift affects both alike
            via += timed(through_gateway, 1)
            straight += timed(direct, 1)

        upload = root / "big.mp4"
        with upload.open("wb") as out:  # an MP4 signature, then zeros (sparse on disk)
            out.write(b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41")
            out.truncate(args.upload_mb * MB)
        pid = running["gateway"].process.pid
        baseline = rss_mb(pid)
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mb(pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        with upload.open("rb") as video:
            reply = client.post(
                f"{gw}/describe", files=[("video", ("big.mp4", video, "video/mp4"))]
            )
        done.set()
        sampler.join()

    p50v, p99v = statistics.median(via), percentile(via, 0.99)
    p50d, p99d = statistics.median(straight), percentile(straight, 0.99)
    print(f"{args.requests} requests each (image + text, 1 s of audio), tiny models:")
    print(f"  through the gateway: p50 {p50v * 1000:.0f} ms, p99 {p99v * 1000:.0f} ms")
    print(f"  direct to services:  p50 {p50d * 1000:.0f} ms, p99 {p99d * 1000:.0f} ms")
    print(f"  ratio gateway / direct: p50 {p50v / p50d:.2f}x, p99 {p99v / p99d:.2f}x")
    print(
        f"{args.upload_mb} MB upload through the gateway (answer {reply.status_code}): "
        f"RSS {baseline:.0f} MB idle, {peak:.0f} MB peak, +{peak - baseline:.0f} MB"
    )


if __name__ == "__main__":
    main()
