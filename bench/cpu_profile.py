"""Run a Python script under cProfile timed by the process's CPU time, not wall time.

`bench/cluster.py --profile-operator` runs the operator through this: on a loaded
machine a wall-clock profile charges to whatever code was on the CPU when the process
was descheduled, so its shares follow the load, not the work.

    .venv/bin/python bench/cpu_profile.py STATS_FILE SCRIPT [ARGS...]
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    stats, script = sys.argv[1], sys.argv[2]
    sys.argv = sys.argv[2:]
    profile = cProfile.Profile(time.process_time)
    try:
        profile.runcall(runpy.run_path, script, run_name="__main__")
    finally:
        profile.dump_stats(stats)


if __name__ == "__main__":
    main()
