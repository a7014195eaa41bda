"""bench/local.py, as docs/speed.md shows it (one round instead of three): it runs
`shoal run` and its peers on the same children and prints both of issue 17's local
targets with a ratio. Nothing here is timed; the verdict (within or OVER) is not asserted,
since it depends on the machine's load."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.local.conftest import REPO

TARGET = re.compile(r"^  TARGET shoal/(xargs|bash) (\d+\.\d+)x <= (\d+\.\d+)x: (within|OVER)$")


def test_the_local_bench_prints_the_fan_out_and_chain_targets_with_their_ratios() -> None:
    done = subprocess.run(
        [sys.executable, "bench/local.py", "--quick", "--repeat", "1", "--python-items", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    targets = {m[1]: (float(m[2]), float(m[3])) for m in map(TARGET.match, lines) if m}
    assert set(targets) == {"xargs", "bash"}, lines
    assert targets["xargs"][1] == 1.5  # a 1,000-item fan-out against xargs -P 2
    assert targets["bash"][1] == 4.0  # a 50-node chain against a bash loop
    assert all(ratio > 0 for ratio, _ in targets.values())
    assert any(line.startswith("  no-slice ") and "shoal/no-slice" in line for line in lines)
    for case in ("fan-out true x1000 (-P 2)", "chain true x50"):
        assert any(line.startswith(case) and "load" in line for line in lines), lines
