"""Run a service as a real process on a loopback port and wait until it is ready.

Used by `make demo` / `make up` (scripts/stack.py) and by the tests that start real processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningService:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_ready(service: RunningService, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"service exited early:\n{service.log()[-5000:]}")
        try:
            if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"not ready after {timeout_s} s:\n{service.log()[-5000:]}")


@contextmanager
def run_service(
    module: str,
    env: Mapping[str, str],
    log_path: Path,
    port: int,
    ready_timeout_s: float = 300,
    wait_ready: bool = True,
    python: str = sys.executable,
) -> Iterator[RunningService]:
    """Start `python -m module` with `env` added; yield once `/readyz` answers 200; stop it.

    `python` is the interpreter of the service's own environment (each service has its own).
    """
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        [python, "-m", module],
        env={**os.environ, **env},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    service = RunningService(f"http://127.0.0.1:{port}", log_path, process)
    try:
        if wait_ready:
            _wait_ready(service, ready_timeout_s)
        yield service
    finally:
        _stop(process)
        log_file.close()


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    try:  # the engine's helper processes share the session; make sure none outlives the test
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
