"""The `postgres` fixture: a real PostgreSQL server for the tests, from Debian's `postgresql`
binaries, a throwaway cluster in a temporary folder, on loopback at a free port, trust auth,
fsync off (test data only).

As root (CI containers), the server runs as the `postgres` user that Debian's package creates:
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tooling.supervise import free_port

USER = "weavewave"


def _binaries() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not versions:
        raise RuntimeError(
            "PostgreSQL is not installed: `apt-get install postgresql` (.ci/run does)."
        )
    return Path(versions[-1]).parent


@dataclass
class PostgresServer:
    host: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database; its URL."""
        import psycopg  # the gateway's venv has it; other suites never import this

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = _binaries()
    root = Path(tempfile.mkdtemp(prefix="weavewave-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    subprocess.run(
        [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", USER, "-A", "trust",
         "--no-sync", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = subprocess.Popen(
        [*as_user, str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1",
         "-p", str(port), "-k", str(root), "-F", "-c", "max_connections=200"],
        stdout=subprocess.DEVNULL,
        stderr=open(root / "server.log", "wb"),  # noqa: SIM115 - lives as long as the server
    )  # fmt: skip
    try:
        running = PostgresServer("127.0.0.1", port)
        _wait_ready(running, server, root)
        yield running
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(running: PostgresServer, server: subprocess.Popen[bytes], root: Path) -> None:
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None:
            log = (root / "server.log").read_text(errors="replace")
            raise RuntimeError(f"PostgreSQL exited at start:\n{log}")
        try:
            psycopg.connect(running.url("postgres"), connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole run (each test makes its own database)."""
    with postgres_server() as server:
        yield server
