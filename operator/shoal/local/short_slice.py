"""Ask Linux for a short scheduling slice, so `shoal run` runs as soon as it is woken.

Children start with `posix_spawn`, which (glibc, `vfork`) suspends the parent until the
child has called `exec`. The new child usually starts on the parent's CPU, and once it
hands the parent its memory back it keeps that CPU: under the EEVDF scheduler (Linux 6.6
and later) a woken task waits out the running task's slice (1.4 ms here) unless its own
slice is shorter. A `true` finishes within one slice, so each spawn held `shoal run` for
the child's whole life (0.75 ms instead of 0.12 ms at parallelism 2, measured with a bare
`posix_spawn` loop), and a fan-out's spawns ran one after the other instead of side by side.

A slice of `SLICE_NS` (the kernel's minimum; Linux 6.12 and later honour it for ordinary
tasks) lets the parent take the CPU back at once. `SCHED_FLAG_RESET_ON_FORK` keeps it from
the children: they start with the default slice. It is a hint: on another kernel, another
architecture or policy, or without permission, nothing changes and nothing fails. It is
asked for once per process, when a run first has two children at a time (a chain never
pays for `ctypes`). `SHOAL_SHORT_SLICE=0` leaves the scheduler alone.
"""

from __future__ import annotations

import os
import struct

__all__ = ["SLICE_NS", "request_short_slice"]

SLICE_NS = 100_000
"""0.1 ms: the shortest slice Linux grants an ordinary task."""

_SCHED_SETATTR = {"x86_64": 314, "aarch64": 274, "riscv64": 274}
"""`sched_setattr`'s system call number where it is known; elsewhere no hint is given."""

_RESET_ON_FORK = 0x01
_ATTR = struct.Struct("=IIQiIQQQ")
"""`struct sched_attr`, its first version (48 bytes): size, policy, flags, nice, priority,
runtime (the slice for an ordinary task), deadline, period."""

_asked: bool | None = None
"""The answer of the first request: the hint is given once per process."""


def request_short_slice() -> bool:
    """Give this process a short slice if the platform allows it; True if it was set."""
    global _asked
    if _asked is None:
        _asked = _request()
    return _asked


def _request() -> bool:
    if os.environ.get("SHOAL_SHORT_SLICE", "1") == "0":
        return False
    number = _SCHED_SETATTR.get(os.uname().machine) if hasattr(os, "uname") else None
    if number is None or os.uname().sysname != "Linux":
        return False
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            return False  # batch, idle or real-time: chosen by someone, left as it is
        nice = os.getpriority(os.PRIO_PROCESS, 0)
        if nice < 0:
            return False  # reset-on-fork would give the children nice 0 instead of this
        import ctypes  # only here: a run that never overlaps children never loads it

        attr = _ATTR.pack(_ATTR.size, os.SCHED_OTHER, _RESET_ON_FORK, nice, 0, SLICE_NS, 0, 0)
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.syscall(number, 0, ctypes.c_char_p(attr), 0)) == 0
    except (OSError, AttributeError):
        return False
