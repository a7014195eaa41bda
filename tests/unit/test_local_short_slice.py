"""`shoal run` asks Linux for a short scheduling slice once its children overlap
(local/short_slice.py), so that a spawn does not keep it off the CPU for a child's whole
life; its children must not inherit that slice, and the opt-out must leave the scheduler
alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, json, os, struct, sys
from shoal.local.short_slice import request_short_slice

def slice_of(pid):
    attr = ctypes.create_string_buffer(48)
    libc = ctypes.CDLL(None, use_errno=True)
    number = {"x86_64": 315, "aarch64": 275, "riscv64": 275}[os.uname().machine]
    assert libc.syscall(number, pid, attr, 48, 0) == 0, os.strerror(ctypes.get_errno())
    return struct.unpack("=IIQiIQQQ", attr.raw)[5]

before = slice_of(0)
granted = request_short_slice()
again = request_short_slice()
child = os.posix_spawn("/bin/sleep", ["sleep", "5"], dict(os.environ))
try:
    child_slice = slice_of(child)
finally:
    os.kill(child, 9)
    os.waitpid(child, 0)
print(json.dumps({"before": before, "granted": granted, "again": again,
                  "after": slice_of(0), "child": child_slice}))
"""


def _probe(**env: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _eevdf_slices() -> bool:
    """Linux 6.12 or later on an architecture whose system call number the module knows."""
    release = os.uname().release.split(".")
    major, minor = int(release[0]), int("".join(c for c in release[1] if c.isdigit()) or 0)
    return os.uname().machine in {"x86_64", "aarch64", "riscv64"} and (major, minor) >= (6, 12)


pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="a Linux scheduler hint")


def test_the_run_gets_a_short_slice_and_its_children_the_default() -> None:
    if not _eevdf_slices():
        pytest.skip(f"kernel {os.uname().release} has no per-task slices")
    seen = _probe(SHOAL_SHORT_SLICE="1")
    assert seen["granted"] is True
    assert seen["again"] is True  # asked once, remembered
    assert seen["after"] == 100_000
    assert seen["before"] != 100_000
    assert seen["child"] == seen["before"]  # reset on fork: the child has the default


def test_the_opt_out_leaves_the_scheduler_alone() -> None:
    if not _eevdf_slices():
        pytest.skip(f"kernel {os.uname().release} has no per-task slices")
    seen = _probe(SHOAL_SHORT_SLICE="0")
    assert seen["granted"] is False
    assert seen["after"] == seen["before"]


def test_a_niced_down_run_keeps_its_priority_for_its_children() -> None:
    """Reset-on-fork would raise the children's priority back to nice 0: under a
    negative nice no hint is asked for (the test runs as root, so it can lower nice)."""
    if os.geteuid() != 0:
        pytest.skip("lowering nice needs root")
    script = "import os; os.setpriority(os.PRIO_PROCESS, 0, -2);" + PROBE.replace(
        "import ctypes, json, os, struct, sys", "import ctypes, json, struct, sys"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    seen = json.loads(done.stdout)
    assert seen["granted"] is False
    assert seen["child"] == seen["before"]
