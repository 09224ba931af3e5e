"""Helpers for tests that need a gateway of their own (its own jobs folder, settings, and
upstreams, the stack's model services unless `env` names others), and for the jobs API:
submitting, and waiting for a state."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import av
import httpx

from tests.e2e.conftest import Stack, venv_python
from tooling.supervise import RunningService, free_port, run_service


@contextmanager
def jobs_gateway(
    stack: Stack, jobs_dir: Path, port: int | None = None, **env: str
) -> Iterator[RunningService]:
    """A gateway process in front of the stack's captioner and composer (`env` overrides
    any setting, upstreams included)."""
    port = port or free_port()
    full_env = {
        "GATEWAY_PORT": str(port),
        "GATEWAY_CAPTIONER_URL": stack.captioner.url,
        "GATEWAY_COMPOSER_URL": stack.composer.url,
        "GATEWAY_JOBS_DIR": str(jobs_dir),
        "GATEWAY_JUDGE_JOBS": "false",  # seconds of kernel loading a process: where it is tested
        **env,
    }
    log = stack.logs / f"gateway-jobs-{port}.log"
    with run_service("gateway", full_env, log, port, python=venv_python("gateway")) as gateway:
        yield gateway


@contextmanager
def composers_gateway(
    stack: Stack, tmp_path_factory: Any, composers: dict[str, str]
) -> Iterator[RunningService]:
    """A jobs gateway knowing `composers` ({name: url}, the first the default) by name."""
    named = ",".join(f"{name}={url}" for name, url in composers.items())
    with jobs_gateway(stack, tmp_path_factory.mktemp("jobs"), GATEWAY_COMPOSERS=named) as gateway:
        yield gateway


def submit(url: str, data: dict[str, str], files: Any = None) -> dict[str, Any]:
    response = httpx.post(f"{url}/jobs", data=data, files=files, timeout=60)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/jobs/{response.json()['id']}"
    job: dict[str, Any] = response.json()
    return job


def wait_for(url: str, job_id: str, states: set[str], timeout_s: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job: dict[str, Any] = httpx.get(f"{url}/jobs/{job_id}", timeout=10).json()
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def seconds_of(body: bytes) -> float:
    with av.open(io.BytesIO(body), mode="r") as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate
