"""What tests read from running services: Prometheus samples, and a process's memory and fds."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx


def sample(text: str, name: str) -> float:
    """One unlabelled sample from a Prometheus text page."""
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def total(text: str, name: str) -> float:
    """The sum of a metric's samples over all its labels (0 when it has none yet)."""
    pattern = rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+-]+)$"
    return sum(float(value) for value in re.findall(pattern, text, re.MULTILINE))


def metric(base_url: str, name: str) -> float:
    return sample(httpx.get(f"{base_url}/metrics").text, name)


def still_for(read: Callable[[], float], seconds: float = 1.0, settle_s: float = 1.0) -> bool:
    """Whether a counter stopped moving: after `settle_s`, it reads the same `seconds` apart.
    For "the work stopped", where a gauge that drops in a `finally` would prove nothing."""
    time.sleep(settle_s)
    before = read()
    time.sleep(seconds)
    return read() == before


def wait_for_metric(base_url: str, name: str, value: float, timeout_s: float = 30) -> float:
    """Poll until the metric equals `value` (or the timeout passes); returns the last reading."""
    deadline = time.monotonic() + timeout_s
    while (reading := metric(base_url, name)) != value and time.monotonic() < deadline:
        time.sleep(0.2)
    return reading


def rss_mb(pid: int) -> float:
    """A process's resident memory, MB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    """How many file descriptors a process holds (from /proc)."""
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))
