"""A process where no new thread can start, as at its limit: for tests of what remem does
without one (search, read counts, organising jobs). Call it only in a process of its own."""

from __future__ import annotations

import resource
import threading
from pathlib import Path

ROOM = 2**32  # address space left for everything else the test does (bytes)
STACK = 2**40  # a new thread's stack: more than is left, so no thread can start


def forbid_new_threads() -> bool:
    """Make every thread started from now on fail with "can't start new thread"; whether it
    did (False where this platform cannot be made to: skip the test). The address space is
    capped too, so memory overcommit cannot let the stack through."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
        used = pages * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + ROOM, resource.RLIM_INFINITY))
        threading.stack_size(STACK)
    except (OSError, ValueError):
        return False
    probe = threading.Thread(target=lambda: None)
    try:
        probe.start()
    except RuntimeError:
        return True
    probe.join()
    return False
