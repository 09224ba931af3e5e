"""The engine's processes die with the service (`captioner/orphans.py`): a parent killed with
SIGKILL takes its forked children (vLLM's engine core is one) with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

PARENT = """
import multiprocessing, sys, time
from captioner.orphans import children_die_with_this_process
if sys.argv[1] == "guarded":
    children_die_with_this_process()
child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(120,))
child.start()
print(child.pid, flush=True)
time.sleep(120)
"""


def orphan_after_kill(mode: str, tmp_path: Path) -> bool:
    """Whether the child outlives its parent's SIGKILL (5 s grace)."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script), mode], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not child.is_running() or child.status() == psutil.STATUS_ZOMBIE:
            return False
        time.sleep(0.05)
    child.kill()
    return True


def test_a_child_dies_with_its_killed_parent(tmp_path: Path) -> None:
    """Before: after kill -9 of the captioner's API process, its vLLM engine processes (3,
    2.3 GB) were alive 30 s later, holding the accelerator."""
    assert orphan_after_kill("plain", tmp_path)  # without it, the child lives on
    assert not orphan_after_kill("guarded", tmp_path)
