"""Captioner fixtures: the tiny Qwen2.5-VL built once per session, and the real service on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tooling.supervise import RunningService, free_port, run_service

# Small caps so the tests exercise them with small files.
SERVICE_ENV = {
    "CAPTIONER_HOST": "127.0.0.1",
    "CAPTIONER_ENFORCE_EAGER": "true",
    "CAPTIONER_MAX_MODEL_LEN": "4096",
    "CAPTIONER_CPU_KV_CACHE_GIB": "1",
    "CAPTIONER_MAX_NUM_SEQS": "4",
    "CAPTIONER_MAX_TOKENS": "48",
    "CAPTIONER_MAX_IMAGES": "3",
    "CAPTIONER_MAX_FRAMES": "6",
    "CAPTIONER_MAX_VIDEO_SECONDS": "20",
    "CAPTIONER_MAX_PIXELS": "50176",
    "CAPTIONER_MAX_FRAME_PIXELS": "12544",
    "CAPTIONER_LOG_JSON": "true",
}


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from captioner.tiny.vlm import build

    return build(tmp_path_factory.mktemp("models") / "tiny-qwen2.5-vl")


@pytest.fixture(scope="session")
def captioner(tiny_vlm: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    port = free_port()
    env = {**SERVICE_ENV, "CAPTIONER_MODEL": str(tiny_vlm), "CAPTIONER_PORT": str(port)}
    log = tmp_path_factory.mktemp("logs") / "captioner.log"
    with run_service("captioner", env, log, port) as service:
        yield service
