"""bench/local_parent.py runs and prints, for a fan-out and a chain of `true`, the parent's
CPU per item, loop turns and (with strace) system calls for shoal and its asyncio peer,
with the ratio: the figures docs/local.md quotes. Small sizes; nothing here is timed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from tests.local.conftest import REPO

ROW = re.compile(
    r"^  (shoal|asyncio) +parent cpu (\d+\.\d+) ms each \(\d+\.\d+-\d+\.\d+\), "
    r"(\d+\.\d+) loop turns(, -?\d+\.\d syscalls)?(  shoal/asyncio (\d+\.\d+)x)?$"
)


def test_the_parent_bench_prints_both_runners_and_their_ratio_per_case() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "bench/local_parent.py",
            "--items",
            "20",
            "--chain",
            "10",
            "--repeat",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for case in ("fan-out of true x20 (parallelism 2)", "chain of true x10 (parallelism 1)"):
        (at,) = [i for i, line in enumerate(lines) if line.startswith(case)]
        rows = [ROW.match(line) for line in lines[at + 1 : at + 3]]
        assert all(rows), lines[at : at + 3]
        shoal, peer = rows
        assert shoal is not None
        assert peer is not None
        assert (shoal[1], peer[1]) == ("shoal", "asyncio")
        assert min(float(shoal[2]), float(peer[2])) > 0
        assert peer[6] is not None  # the ratio
        if shutil.which("strace") is not None:
            assert None not in (shoal[4], peer[4])
