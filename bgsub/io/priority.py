"""Scheduling priority for the pipeline's reader and writer threads.

In the ``bgsub`` command the masker's thread is the one that sets the pace;
the reader and writer wake once a frame, and on a busy machine the scheduler
may run a waking thread on the masker's core ahead of it.  Giving those two
threads a higher nice value makes them yield to the masker when they share a
core, and costs them nothing when a core is free.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["lower_this_thread"]


def lower_this_thread(nice: int) -> bool:
    """Raise the nice value of the calling thread (only) by *nice*; True if it was done.

    Linux only, where a thread's id names the thread alone to
    ``setpriority``; elsewhere, for 0, or where the system refuses, nothing
    changes.
    """
    if nice <= 0 or not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        return False
    return True
