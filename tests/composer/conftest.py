"""Composer fixtures: the tiny MusicGen built once per session, and the real service on it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tooling.supervise import RunningService, free_port, run_service

# A 3 s window with a 2 s stride sends anything longer than 3 s through the continuation path.
SERVICE_ENV = {
    "COMPOSER_HOST": "127.0.0.1",
    "COMPOSER_BACKEND": "transformers",
    "COMPOSER_WINDOW_S": "3",
    "COMPOSER_EXTEND_STRIDE_S": "2",
    "COMPOSER_MAX_DURATION_S": "60",
    "COMPOSER_BATCH_WINDOW_MS": "400",
    "COMPOSER_MAX_BATCH_SIZE": "4",
    "COMPOSER_LOG_JSON": "true",
}


@pytest.fixture(scope="session")
def tiny_musicgen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from composer.tiny.musicgen import build

    return build(tmp_path_factory.mktemp("models") / "tiny-musicgen")


@pytest.fixture(scope="session")
def tiny_stereo_musicgen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from composer.tiny.musicgen import build

    return build(tmp_path_factory.mktemp("models") / "tiny-musicgen-stereo", stereo=True)


@pytest.fixture(scope="session")
def tiny_transformers_melody(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """transformers' musicgen-melody layout, by the documented command (its tiny demucs goes to
    the suite's hub cache)."""
    out = tmp_path_factory.mktemp("models") / "tiny-musicgen-melody-hf"
    hub_cache = os.environ["HF_HUB_CACHE"]
    command = ["-m", "composer.tiny", str(out), "--melody", "--hub-cache", hub_cache]
    subprocess.run([sys.executable, *command], check=True, capture_output=True)
    return out


def build_tiny_diffusion(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A diffusion composer's diffusers layout at tiny widths, by docs/composers.md's command."""
    out = tmp_path_factory.mktemp("models") / f"tiny-{kind}"
    command = ["-m", "composer.tiny", str(out), "--kind", kind]
    subprocess.run([sys.executable, *command], check=True, capture_output=True)
    return out


@pytest.fixture(scope="session")
def tiny_ace_step(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_diffusion("ace-step", tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_audioldm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_diffusion("audioldm2", tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_stable_audio_3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_diffusion("stable-audio-3", tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_stable_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_diffusion("stable-audio", tmp_path_factory)


@pytest.fixture(scope="session")
def composer(
    tiny_musicgen: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    port = free_port()
    env = {**SERVICE_ENV, "COMPOSER_MODEL": str(tiny_musicgen), "COMPOSER_PORT": str(port)}
    log = tmp_path_factory.mktemp("logs") / "composer.log"
    with run_service("composer", env, log, port, ready_timeout_s=120) as service:
        yield service


@contextmanager
def serve_composer(
    backend: str, model: Path, tmp_path_factory: pytest.TempPathFactory, **env: str
) -> Iterator[RunningService]:
    """The composer as a real process on `model` with `backend` (and any other settings)."""
    port = free_port()
    settings = {
        "COMPOSER_BACKEND": backend,
        "COMPOSER_MODEL": str(model),
        "COMPOSER_PORT": str(port),
        **{f"COMPOSER_{name.upper()}": value for name, value in env.items()},
    }
    log = tmp_path_factory.mktemp("logs") / f"composer-{backend}-{model.name}.log"
    with run_service("composer", settings, log, port, ready_timeout_s=120) as service:
        yield service
