"""The whole pipeline as three real processes on the tiny models, each from its own venv."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.captioner.conftest import SERVICE_ENV as CAPTIONER_ENV
from tooling.supervise import RunningService, free_port, run_service

REPO = Path(__file__).resolve().parents[2]
VENVS = REPO / ".venv"


def venv_python(service: str) -> str:
    return str(VENVS / service / "bin" / "python")


@contextmanager
def tiny_composer(
    build: list[str], backend: str, name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningService]:
    """A composer process of its own serving a tiny build: `build` is the builder's module and
    flags (its output folder goes first), run from the composer's environment."""
    model = tmp_path_factory.mktemp("models") / name
    module, *flags = build
    command = [venv_python("composer"), "-m", module, str(model), *flags]
    subprocess.run(command, check=True, capture_output=True)
    port = free_port()
    env = {"COMPOSER_BACKEND": backend, "COMPOSER_MODEL": str(model), "COMPOSER_PORT": str(port)}
    log = tmp_path_factory.mktemp("logs") / f"composer-{name}.log"
    with run_service("composer", env, log, port, 120, python=venv_python("composer")) as composer:
        yield composer


@dataclass
class Stack:
    gateway: RunningService
    captioner: RunningService
    composer: RunningService
    logs: Path
    gateway_tmp: Path
    """The gateway's TMPDIR: its spooled uploads live here, and must not outlive a request."""
    _exits: ExitStack
    _envs: dict[str, dict[str, str]]

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def service(self, name: str) -> RunningService:
        running: RunningService = getattr(self, name)
        return running

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Stop a model service (SIGKILL: a crash, no goodbye)."""
        process = self.service(name).process
        process.send_signal(sig)
        process.wait(timeout=30)

    def start(self, name: str) -> None:
        """Start a stopped model service again, on the same port, and wait until ready."""
        env = self._envs[name]
        running = self._exits.enter_context(
            run_service(
                name,
                env,
                self.logs / f"{name}.log",
                int(env[f"{name.upper()}_PORT"]),
                ready_timeout_s=300,
                python=venv_python(name),
            )
        )
        setattr(self, name, running)

    def stop_composer(self) -> None:
        self.stop("composer")

    def start_composer(self) -> None:
        self.start("composer")


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    # The composer serves the stereo layout (musicgen-stereo-*): every route carries two channels.
    built = {"captioner": root / "tiny-qwen2.5-vl", "composer": root / "tiny-musicgen-stereo"}
    flags = {"captioner": [], "composer": ["--stereo"]}
    for service, folder in built.items():
        subprocess.run(
            [venv_python(service), "-m", f"{service}.tiny", str(folder), *flags[service]],
            check=True,
            capture_output=True,
        )
    return built


@pytest.fixture(scope="session")
def stack(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("logs")
    gateway_tmp = tmp_path_factory.mktemp("gateway-tmp")
    ports = {name: free_port() for name in ("captioner", "composer", "gateway")}
    captioner_env = {
        **CAPTIONER_ENV,
        "CAPTIONER_MODEL": str(models["captioner"]),
        "CAPTIONER_PORT": str(ports["captioner"]),
    }
    composer_env = {
        "COMPOSER_MODEL": str(models["composer"]),
        "COMPOSER_PORT": str(ports["composer"]),
        "COMPOSER_MAX_DURATION_S": "30",
    }
    with ExitStack() as stack:
        captioner = stack.enter_context(
            run_service(
                "captioner",
                captioner_env,
                logs / "captioner.log",
                ports["captioner"],
                python=venv_python("captioner"),
            )
        )
        composer = stack.enter_context(
            run_service(
                "composer",
                composer_env,
                logs / "composer.log",
                ports["composer"],
                python=venv_python("composer"),
            )
        )
        gateway = stack.enter_context(
            run_service(
                "gateway",
                {
                    "GATEWAY_PORT": str(ports["gateway"]),
                    "GATEWAY_MAX_DURATION_S": "30",
                    "GATEWAY_MAX_IMAGE_BYTES": "400000",
                    "GATEWAY_RATE_LIMIT_PER_MINUTE": "10000",
                    "GATEWAY_READ_RATE_LIMIT_PER_MINUTE": "100000",
                    "GATEWAY_SPOOL_MEMORY_BYTES": "1024",
                    "GATEWAY_UPLOAD_IDLE_TIMEOUT_S": "3",
                    "GATEWAY_JOBS_DIR": str(gateway_tmp.parent / "gateway-jobs"),
                    "TMPDIR": str(gateway_tmp),
                    "GATEWAY_CAPTIONER_URL": captioner.url,
                    "GATEWAY_COMPOSER_URL": composer.url,
                },
                logs / "gateway.log",
                ports["gateway"],
                python=venv_python("gateway"),
            )
        )
        envs = {"captioner": captioner_env, "composer": composer_env}
        yield Stack(gateway, captioner, composer, logs, gateway_tmp, stack, envs)
