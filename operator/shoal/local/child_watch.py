"""How `shoal run` learns that a child process ended: one pidfd per child, no thread.

Python 3.11's asyncio waits for each subprocess on a thread of its own (the threaded
child watcher): a thread started and joined per fan-out item, about a quarter of the
parent's CPU per spawn of `true`. A pidfd (Linux 5.3+) is an fd the event loop polls
like any other. Python 3.12 already picks it by default; older kernels and other systems
keep the default watcher.
"""

from __future__ import annotations

import asyncio
import os
import sys
import warnings

__all__ = ["pidfd_supported", "use_pidfd_watcher"]


def pidfd_supported() -> bool:
    """Whether this kernel gives out pidfds (the call exists on Linux builds regardless)."""
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        fd = os.pidfd_open(os.getpid())
    except OSError:
        return False
    os.close(fd)
    return True


def use_pidfd_watcher() -> bool:
    """Install the pidfd child watcher for the next `asyncio.run`, on Python 3.11 where it
    is not the default; True if it did."""
    if sys.version_info >= (3, 12) or not pidfd_supported():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
    return True
