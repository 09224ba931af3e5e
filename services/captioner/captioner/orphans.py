"""The engine's processes die with the service's process.

vLLM's engine core is a child process holding the accelerator (and its workers are its own
children, which follow it through vLLM's death pipe). If the service's process is killed outright
(`kill -9`, the OOM killer), nothing shuts the engine down: it lived on, holding the GPU, and a
supervisor's restart found the device taken. On Linux every process this one forks directly is
asked to receive SIGTERM when this one dies (the parent-death signal), so the engine core shuts
down as on any stop. Linux counts the *thread* that forked as the parent: the engine is started
from a thread that lives as long as the process (`engine.ENGINE_FORKER`), never from a pooled
worker thread that ends when idle.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def children_die_with_this_process(sig: signal.Signals = signal.SIGTERM) -> None:
    """From now on, each direct child forked by this process gets `sig` when it dies (Linux;
    elsewhere nothing changes). Grandchildren are left to their own parents."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    forker = [0]

    def before() -> None:
        forker[0] = os.getpid()  # copied into the child: who forked it

    def in_child() -> None:
        if forker[0] != parent:
            return  # forked by a child of ours (a grandchild): its own parent looks after it
        libc.prctl(PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:  # the parent died before the signal was asked for
            os.kill(os.getpid(), sig)

    os.register_at_fork(before=before, after_in_child=in_child)
