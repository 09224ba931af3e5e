"""`make demo` and `make up`: the whole pipeline on this machine (CPU, no Docker).

    demo  start the captioner (:8001), composer (:8002) and gateway (:8000); send a generated
          picture and a line of text to POST /generate; write out/demo.wav; print the brief and
          the timings; stop everything.
    up    start the three and serve until Ctrl-C.

The default models are the real small ones (Qwen/Qwen2.5-VL-3B-Instruct, facebook/musicgen-small;
override with CAPTIONER_MODEL / COMPOSER_MODEL). When one cannot be fetched (offline, no hub
access), this says so plainly, builds the tiny random model of the same architecture, and
carries on: every code path is the real one, but the brief is gibberish and the music is noise.

COMPOSERS=musicgen,ace-step adds the song composer (ACE-Step, :8003; ACE_STEP_MODEL overrides
its checkpoint) and names both for the gateway, the first the default.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import unquote

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tooling.supervise import run_service  # noqa: E402

DEFAULTS = {
    "captioner": "Qwen/Qwen2.5-VL-3B-Instruct",
    "composer": "facebook/musicgen-small",
    "ace-step": "ACE-Step/acestep-v15-xl-turbo-diffusers",
}
TINY = {
    "captioner": REPO / "models/tiny-qwen2.5-vl",
    "composer": REPO / "models/tiny-musicgen",
    "ace-step": REPO / "models/tiny-ace-step",
}
MODEL_VARIABLES = {
    "captioner": "CAPTIONER_MODEL",
    "composer": "COMPOSER_MODEL",
    "ace-step": "ACE_STEP_MODEL",
}
TINY_BUILDS = {"ace-step": ["--kind", "ace-step"]}
SERVICE_OF = {"captioner": "captioner", "composer": "composer", "ace-step": "composer"}
PORTS = {"captioner": 8001, "composer": 8002, "ace-step": 8003, "gateway": 8000}
COMPOSER_NAMES = {"musicgen": "composer", "ace-step": "ace-step"}
"""COMPOSERS' names -> the model they serve."""
LOGS = REPO / "out" / "logs"


def say(message: str) -> None:
    print(f"weavewave: {message}", flush=True)  # noqa: T201


def python_of(service: str) -> str:
    return str(REPO / ".venv" / service / "bin" / "python")


def fetchable(service: str, model: str) -> str | None:
    """None when `model` is a local folder or its config can be fetched; else why not."""
    if Path(model).is_dir():
        return None
    probe = (
        "from huggingface_hub import snapshot_download; "
        f"snapshot_download({model!r}, allow_patterns=['config.json'])"
    )
    try:
        result = subprocess.run(
            [python_of(service), "-c", probe], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        return "the model hub did not answer within 60 s"
    if result.returncode == 0:
        return None
    if "internet connection" in result.stderr or "LocalEntryNotFoundError" in result.stderr:
        return "the model hub cannot be reached and it is not in the local cache"
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else f"exit code {result.returncode}"


def choose_model(tier: str) -> tuple[str, bool]:
    """(model, is_tiny) for a tier, falling back to the tiny model with a plain message."""
    service = SERVICE_OF[tier]
    model = os.environ.get(MODEL_VARIABLES[tier], DEFAULTS[tier])
    reason = fetchable(service, model)
    if reason is None:
        return model, Path(model).resolve() == TINY[tier].resolve()
    say(f"{tier}: could not load {model} ({reason}).")
    say(
        f"{tier}: using a tiny random model of the same architecture instead; "
        "it runs every real code path but was never trained."
    )
    if not TINY[tier].is_dir():
        say(f"{tier}: building {TINY[tier].relative_to(REPO)} ...")
        build = [python_of(service), "-m", f"{service}.tiny", str(TINY[tier])]
        subprocess.run([*build, *TINY_BUILDS.get(tier, [])], check=True, capture_output=True)
    return str(TINY[tier]), True


def composers() -> list[str]:
    """The composers asked for with COMPOSERS (default: MusicGen alone)."""
    names = [n.strip() for n in os.environ.get("COMPOSERS", "").split(",") if n.strip()]
    unknown = [n for n in names if n not in COMPOSER_NAMES]
    if unknown:
        raise SystemExit(f"weavewave: COMPOSERS: unknown {unknown}; known: musicgen, ace-step")
    return names or ["musicgen"]


def start(exits: ExitStack) -> tuple[str, bool]:
    """Start the services; returns the gateway URL and whether any model is tiny."""
    LOGS.mkdir(parents=True, exist_ok=True)
    named = composers()
    tiers = ["captioner", *(COMPOSER_NAMES[name] for name in named)]
    chosen = {tier: choose_model(tier) for tier in tiers}
    all_tiny = all(tiny for _, tiny in chosen.values())
    offline = {"HF_HUB_OFFLINE": "1"} if all_tiny else {}
    cpu = {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "VLLM_NO_USAGE_STATS": "1", **offline}
    captioner, tiny_captioner = chosen["captioner"]
    gateway: dict[str, str] = {"GATEWAY_LOG_JSON": "false"}
    if len(named) > 1:
        gateway["GATEWAY_COMPOSERS"] = ",".join(
            f"{name}=http://127.0.0.1:{PORTS[COMPOSER_NAMES[name]]}" for name in named
        )
    envs: dict[str, dict[str, str]] = {
        "captioner": {
            "CAPTIONER_MODEL": captioner,
            "CAPTIONER_ENFORCE_EAGER": "true",
            "CAPTIONER_CPU_KV_CACHE_GIB": "2",
            "CAPTIONER_LOG_JSON": "false",
            "CAPTIONER_MAX_MODEL_LEN": "4096" if tiny_captioner else "8192",
            **cpu,
        },
        "gateway": gateway,
    }
    for tier in tiers[1:]:
        model = chosen[tier][0]
        envs[tier] = {"COMPOSER_MODEL": model, "COMPOSER_LOG_JSON": "false", **cpu}
        if tier == "ace-step":
            envs[tier]["COMPOSER_BACKEND"] = "diffusers"
    for tier in [*tiers, "gateway"]:
        service = SERVICE_OF.get(tier, tier)
        say(f"starting the {tier} (log: {(LOGS / tier).relative_to(REPO)}.log) ...")
        env = {**envs[tier], f"{service.upper()}_PORT": str(PORTS[tier])}
        timeout = 300 if tier == "gateway" or all_tiny else 1800
        exits.enter_context(
            run_service(
                service,
                env,
                LOGS / f"{tier}.log",
                PORTS[tier],
                ready_timeout_s=timeout,
                python=python_of(service),
            )
        )
    return f"http://127.0.0.1:{PORTS['gateway']}", any(tiny for _, tiny in chosen.values())


def sample_image() -> bytes:
    """An evening sky: a warm gradient over a dark sea."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 360))
    draw = ImageDraw.Draw(image)
    for y in range(360):
        warm = (255, max(60, 200 - y // 2), max(40, 120 - y // 3)) if y < 220 else (20, 40, 70)
        draw.line([(0, y), (640, y)], fill=warm)
    draw.ellipse([280, 160, 360, 240], fill=(255, 220, 120))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def demo(url: str, tiny: bool) -> None:
    out = REPO / "out" / "demo.wav"
    prompt = "a warm evening by the sea, slow and nostalgic"
    say(f"POST {url}/generate: a generated picture + {prompt!r}")
    started = time.perf_counter()
    first = None
    with httpx.stream(
        "POST",
        f"{url}/generate",
        timeout=httpx.Timeout(1800),
        data={"prompt": prompt, "duration": "8", "seed": "42"},
        files=[("images", ("evening.png", sample_image(), "image/png"))],
    ) as reply:
        if reply.status_code != 200:
            raise SystemExit(f"weavewave: /generate failed: {reply.read().decode()}")
        with out.open("wb") as audio:
            for piece in reply.iter_raw():
                first = first if first is not None else time.perf_counter() - started
                audio.write(piece)
    total = time.perf_counter() - started
    brief = json.loads(unquote(reply.headers["x-weavewave-brief"]))
    say(f"brief ({brief['source']}, {brief['model']}): {brief['description']}")
    say(
        f"timings: brief decode {brief['timings']['decode_s']:.2f} s + generate "
        f"{brief['timings']['generate_s']:.2f} s; first audio byte {first or 0:.2f} s; "
        f"total {total:.2f} s"
    )
    say(
        f"wrote {out.relative_to(REPO)} ({reply.headers['x-duration']} s, "
        f"{reply.headers['x-sample-rate']} Hz, seed {reply.headers['x-seed']})"
    )
    if tiny:
        say("note: tiny random models were used, so the audio is noise from untrained weights.")


def gpus() -> list[str]:
    """This machine's NVIDIA GPUs (`nvidia-smi -L`), none when there is no driver."""
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in listed.stdout.splitlines() if line.startswith("GPU ")]


def gpu_notice() -> str | None:
    """What to tell a user with GPUs: these environments are CPU builds and leave them idle."""
    found = gpus()
    if not found:
        return None
    return (
        f"{len(found)} NVIDIA GPU(s) found, but make demo / make up run the CPU builds and leave "
        "them unused. To serve on them: `docker compose up` (captioner on GPU 0, composer on "
        "GPU 1; see docs/deploy.md), or run each service's GPU image with `--gpus`."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["demo", "up"])
    command = parser.parse_args().command
    notice = gpu_notice()
    if notice:
        say(notice)
    with ExitStack() as exits:
        url, tiny = start(exits)
        say(f"ready: {url} (API docs: {url}/docs)")
        if command == "demo":
            demo(url, tiny)
            say("stopping the services ...")
            return
        say("serving; press Ctrl-C to stop them all.")
        stop = threading.Event()
        # Explicit handlers: a shell starts background jobs with SIGINT ignored, and a service
        # manager stops with SIGTERM; either way the three services must be stopped.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.wait(1.0):
            pass
        say("stopping the services ...")


if __name__ == "__main__":
    main()
