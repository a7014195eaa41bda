"""Start-up cost of the `shoal` command line, as ratios to a same-run peer.

Each case runs as a child process `--repeat` times, the cases interleaved so that they
share the machine's noise; a child's CPU (user + sys, its own children included) and
peak RSS come from `os.wait4`. Compared:
  `shoal --help`                   to `python -c pass`    target CPU <= 3x  (issue 17)
  `shoal validate examples/hello`  to `python -c pass`    target CPU <= 5x  (issue 17)
  `shoal run` of a 50-node chain   to a bash loop         target wall <= 4x (issue 17)
     of `true` steps                  spawning 50 `true`   (measured only: the local
                                                           executor is another change)
  `shoal run` of one `true` node   to `python -c pass`    (start-up: measured only)
With `--against TREE` (a source tree of shoal, such as `git archive main` unpacked), the
two `shoal run` cases also run from TREE's `operator/` and `worker/` (first on
PYTHONPATH), interleaved with this checkout's, and their CPU is printed as a ratio: a
change's effect on start-up, measured in one run.
Medians, with the spread (min-max) of the repeated runs, and the load average, so a
reader can judge the noise of a shared machine. Peak RSS is read by GNU time from one
extra run: a child's own `ru_maxrss` starts at its parent's RSS (the pages it inherits
until it execs), so wait4 here could not report anything smaller than this script.

    .venv/bin/python bench/startup.py [--repeat 7] [--chain 50]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "examples" / "hello.yaml"
QUIET = [
    (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
]


@dataclass
class Case:
    """One command line and what its runs cost."""

    label: str
    argv: list[str]
    env: dict[str, str] | None = None
    """None: this process's environment."""
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    rss_mib: float | None = None

    def run_once(self) -> None:
        """Spawn, wait, and record CPU (self and reaped children), wall time and peak RSS."""
        start = time.perf_counter()
        env = os.environ if self.env is None else self.env
        pid = os.posix_spawn(self.argv[0], self.argv, env, file_actions=QUIET)
        _, status, usage = os.wait4(pid, 0)
        self.wall.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{self.label}: {' '.join(self.argv)} failed ({status})")
        self.cpu.append(usage.ru_utime + usage.ru_stime)

    def measure_rss(self, gnu_time: str | None, folder: Path) -> None:
        """Peak RSS of one run, as GNU time (a small parent) reads it from wait4."""
        if gnu_time is None:
            return
        report = folder / "rss"
        argv = [gnu_time, "-f", "%M", "-o", str(report), *self.argv]
        env = os.environ if self.env is None else self.env
        pid = os.posix_spawn(gnu_time, argv, env, file_actions=QUIET)
        _, status, _ = os.wait4(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            self.rss_mib = int(report.read_text().split()[-1]) / 1024  # KiB

    def line(self) -> str:
        cpu, wall = statistics.median(self.cpu), statistics.median(self.wall)
        return (
            f"{self.label:<34} cpu {1000 * cpu:7.1f} ms ({1000 * min(self.cpu):.1f}-"
            f"{1000 * max(self.cpu):.1f})  wall {1000 * wall:7.1f} ms ({1000 * min(self.wall):.1f}-"
            f"{1000 * max(self.wall):.1f})  rss "
            + ("?" if self.rss_mib is None else f"{self.rss_mib:.1f} MiB")
        )


def shoal_argv() -> list[str]:
    """The installed `shoal` script next to this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "shoal"
    return [str(script)] if script.exists() else [sys.executable, "-m", "shoal.cli.main"]


def chain_manifest(folder: Path, length: int) -> Path:
    """A Workflow of `length` nodes, each running `true` after the previous one."""
    lines = [
        "apiVersion: shoal.dev/v1alpha1",
        "kind: Workflow",
        "metadata: {name: chain}",
        "spec:",
        "  nodes:",
    ]
    for i in range(length):
        after = f", dependsOn: [n{i - 1}]" if i else ""
        lines.append(f"    - {{name: n{i}, command: ['true']{after}}}")
    path = folder / f"chain{length}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def ratio(case: Case, peer: Case, target: float | None, what: str) -> str:
    pick = (lambda c: c.cpu) if what == "cpu" else (lambda c: c.wall)
    value = statistics.median(pick(case)) / statistics.median(pick(peer))
    line = f"{case.label:<34} {what} {value:6.2f}x {peer.label:<22}"
    if target is None:
        return line
    verdict = "within" if value <= target else "OVER"
    return f"{line} target <= {target:g}x: {verdict}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="runs of each case (7)")
    parser.add_argument("--chain", type=int, default=50, help="nodes in the chain (50)")
    parser.add_argument(
        "--against", type=Path, help="another shoal source tree to compare `shoal run` with"
    )
    args = parser.parse_args()
    from local import compile_project  # bench/local.py: the same step, one owner

    compiled = ", ".join(compile_project())  # as an install has it: no run compiles sources
    if args.against is not None:
        compiled += ", " + ", ".join(compile_tree(args.against))
    true = shutil.which("true") or "/bin/true"
    bash = shutil.which("bash") or "/bin/bash"
    shoal = shoal_argv()
    with tempfile.TemporaryDirectory(prefix="shoal-startup-") as tmp:
        folder = Path(tmp)
        python = Case("python -c pass", [sys.executable, "-c", "pass"])
        helps = Case("shoal --help", [*shoal, "--help"])
        validate = Case("shoal validate examples/hello.yaml", [*shoal, "validate", str(HELLO)])
        loop = Case(
            f"bash loop of {args.chain} true",
            [bash, "-c", f'for i in $(seq {args.chain}); do "{true}"; done'],
        )
        chain, one = (run_case(shoal, folder, n) for n in (args.chain, 1))
        twins = [] if args.against is None else [against(c, args.against) for c in (chain, one)]
        cases = [python, helps, validate, loop, chain, one, *twins]
        before = os.getloadavg()
        for _ in range(args.repeat):
            for case in cases:
                case.run_once()
        after = os.getloadavg()
        gnu_time = shutil.which("time", path="/usr/bin:/bin")
        for case in cases:
            case.measure_rss(gnu_time, folder)
    print(
        f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; load average "
        f"{before[0]:.2f} before, {after[0]:.2f} after; median of {args.repeat} "
        "(min-max); CPU includes the child's own children; rss: GNU time, one run"
    )
    print(f"bytecode compiled (as an install does): {compiled}")
    for case in cases:
        print(case.line())
    print(ratio(helps, python, 3, "cpu"))
    print(ratio(validate, python, 5, "cpu"))
    print(ratio(chain, loop, 4, "wall"))
    print(ratio(chain, loop, 4, "cpu") + " (CPU: for reference, the target is on wall)")
    print(ratio(one, python, None, "cpu") + f" ({cpu_ms(one) - cpu_ms(python):.1f} ms more)")
    for case, twin in zip((chain, one), twins, strict=False):
        print(ratio(case, twin, None, "cpu") + f" ({cpu_ms(case) - cpu_ms(twin):+.1f} ms)")
    return 0


def run_case(shoal: list[str], folder: Path, length: int) -> Case:
    """`shoal run` of a chain of `length` nodes of `true`, plain and quiet."""
    manifest = chain_manifest(folder, length)
    work = str(folder / f"work{length}")
    label = f"shoal run: chain of {length} true" if length > 1 else "shoal run: 1 node true"
    return Case(label, [*shoal, "run", "--plain", "-q", "--workdir", work, str(manifest)])


def against(case: Case, tree: Path) -> Case:
    """`case` with `tree`'s sources first on the path (the same interpreter and script)."""
    sources = [str(tree.resolve() / "operator"), str(tree.resolve() / "worker")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sources)}
    return Case(f"{case.label} ({tree.name})", case.argv, env=env)


def compile_tree(tree: Path) -> list[str]:
    """Byte-compile `tree`'s sources, as compile_project does this checkout's."""
    import compileall

    folders = [tree / "operator" / "shoal", tree / "worker" / "shoal_worker"]
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        raise SystemExit(f"--against {tree}: not a shoal source tree (no {', '.join(missing)})")
    for folder in folders:
        compileall.compile_dir(folder, quiet=1)
    return [str(f) for f in folders]


def cpu_ms(case: Case) -> float:
    return 1000 * statistics.median(case.cpu)


if __name__ == "__main__":
    raise SystemExit(main())
