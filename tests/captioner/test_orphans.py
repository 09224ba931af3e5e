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


LIVING = """
import multiprocessing, threading, time
from captioner.engine import ENGINE_FORKER
from captioner.orphans import children_die_with_this_process
children_die_with_this_process()
def fork():
    return multiprocessing.get_context("fork").Process(
        target=time.sleep, args=(120,), daemon=True
    )
def start(process):
    process.start()
    time.sleep(0.5)  # the child's own hook has run before this thread may end
    return process
from_pooled = fork()
worker = threading.Thread(target=start, args=(from_pooled,))
worker.start()
worker.join()  # a pooled worker thread that ends when idle, as anyio's do
from_forker = ENGINE_FORKER.submit(start, fork()).result()
time.sleep(1)
print(from_pooled.is_alive(), from_forker.is_alive(), flush=True)
from_forker.kill()
"""


def test_the_engine_is_started_from_a_thread_that_lives_as_long_as_the_process(
    tmp_path: Path,
) -> None:
    """Linux sends the parent-death signal when the forking *thread* ends: a child forked from
    a worker thread that ends dies with it; the engine's own forker thread never ends."""
    script = tmp_path / "living.py"
    script.write_text(LIVING)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True"], done.stderr
