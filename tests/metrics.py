"""Read one unlabelled sample from a running service's Prometheus `/metrics`."""

from __future__ import annotations

import re
import time

import httpx


def metric(base_url: str, name: str) -> float:
    text = httpx.get(f"{base_url}/metrics").text
    match = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def wait_for_metric(base_url: str, name: str, value: float, timeout_s: float = 30) -> float:
    """Poll until the metric equals `value` (or the timeout passes); returns the last reading."""
    deadline = time.monotonic() + timeout_s
    while (reading := metric(base_url, name)) != value and time.monotonic() < deadline:
        time.sleep(0.2)
    return reading
