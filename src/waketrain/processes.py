"""Child processes that die with the process that started them, however it dies."""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Run first thing in a child: the kernel sends it SIGTERM when its parent dies (kill -9 too).

    Linux ties the signal to the parent *thread* that started the child, so start children
    from a thread that lives as long as they do. A parent that died before this ran is caught
    by comparing pids.
    """
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)
