"""What the parent process of `shoal run` spends per fan-out item and per chain node, start-up
left out, next to a bare asyncio spawner doing the same spawns in the same run.

bench/local.py measures wall time, which on a shared machine moves by tens of per cent
between rounds; this measures what a change to the executor moves and noise barely does:
  cpu      the parent's own CPU (`time.process_time`, children excluded) from the start of
           the run to its end, in-process (the CLI's `shoal run --plain --quiet`);
  turns    event-loop iterations (shoal: its reactor's selector waits, local/reactor.py;
           the peer: asyncio's `_run_once` calls): each is an epoll_wait and a pass over
           the loop's ready callbacks;
  syscalls system calls of the parent alone (`strace -c`, if installed), counted for
           N items and for a tenth of N and divided by the difference, so start-up and
           the end of the run cancel out.
The peer is the bare asyncio spawner of bench/local.py (create_subprocess_exec, pipes
read to the end, a semaphore for parallelism; a chain is parallelism 1) run in-process
the same way. Rounds alternate shoal and the peer; medians, spread and load are printed.

    .venv/bin/python bench/local_parent.py [--items 1000] [--chain 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.base_events
import contextlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

TRUE = shutil.which("true") or "/bin/true"


def manifest(kind: str, count: int) -> dict[str, object]:
    """A fan-out of `count` items at parallelism 2, or a chain of `count` nodes, of `true`."""
    if kind == "fan-out":
        nodes: list[dict[str, object]] = [
            {"name": "each", "command": [TRUE], "forEach": list(range(count)), "parallelism": 2}
        ]
    else:
        nodes = [
            {"name": f"n{i}", "command": [TRUE], **({"dependsOn": [f"n{i - 1}"]} if i else {})}
            for i in range(count)
        ]
    meta = {"name": kind.replace("-", "")}
    return {"apiVersion": "shoal.dev/v1alpha1", "kind": "Workflow", "metadata": meta,
            "spec": {"nodes": nodes}}  # fmt: skip


PEER = """
import asyncio, sys
async def one(gate, argv):
    async with gate:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        await proc.communicate()
async def spawner(count, width, argv):
    gate = asyncio.Semaphore(width)
    await asyncio.gather(*(one(gate, argv) for _ in range(count)))
if __name__ == "__main__":
    asyncio.run(spawner(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]))
"""
"""The peer, as a script (for strace) whose `spawner` is also run in-process."""

_turns = [0]


@contextlib.contextmanager
def counting_turns() -> Iterator[list[int]]:
    """Count the event loop's iterations within the block."""
    loop_class = asyncio.base_events.BaseEventLoop
    original = loop_class._run_once  # type: ignore[attr-defined]

    def counted(self: object) -> None:
        _turns[0] += 1
        original(self)

    loop_class._run_once = counted  # type: ignore[attr-defined]
    try:
        yield _turns
    finally:
        loop_class._run_once = original  # type: ignore[attr-defined]


def run_shoal(path: Path, work: Path) -> tuple[float, int]:
    """Parent CPU seconds and loop turns (the reactor's selector waits) of one in-process
    `shoal run`, start-up excluded."""
    from shoal.cli.main import main
    from shoal.local.executor import LocalExecutor
    from shoal.local.reactor import SelectReactor

    measured: dict[str, float] = {}
    run_blocking, close = LocalExecutor.run_blocking, SelectReactor.close

    def timed(self: LocalExecutor) -> object:
        start = time.process_time()
        try:
            return run_blocking(self)
        finally:
            measured["cpu"] = time.process_time() - start

    def closing(self: SelectReactor) -> None:
        measured["turns"] = self.turns
        close(self)

    LocalExecutor.run_blocking = timed  # type: ignore[assignment,method-assign]
    SelectReactor.close = closing  # type: ignore[method-assign]
    argv = sys.argv
    sys.argv = ["shoal", "run", "--plain", "--quiet", "--workdir", str(work), str(path)]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            code = main()
    finally:
        sys.argv = argv
        LocalExecutor.run_blocking, SelectReactor.close = run_blocking, close  # type: ignore[method-assign]
        shutil.rmtree(work, ignore_errors=True)
    if code != 0:
        raise SystemExit(f"shoal run {path} failed ({code})")
    return measured["cpu"], int(measured["turns"])


def run_peer(count: int, width: int) -> tuple[float, int]:
    """Parent CPU seconds and loop turns of the bare asyncio spawner, in-process."""
    if sys.version_info < (3, 12):  # asyncio's best on 3.11: pidfds, not a thread per child
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(asyncio.PidfdChildWatcher())
    scope: dict[str, object] = {"__name__": "peer"}
    exec(PEER, scope)
    spawner: Callable[[int, int, list[str]], object] = scope["spawner"]  # type: ignore[assignment]
    with counting_turns():
        start, _turns[0] = time.process_time(), 0
        asyncio.run(spawner(count, width, [TRUE]))  # type: ignore[arg-type]
        return time.process_time() - start, _turns[0]


def syscalls(argv: list[str]) -> int | None:
    """System calls of the process `argv` alone (not its children), by strace -c."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as out:
        done = subprocess.run(
            [strace, "-c", "-o", out.name, *argv], capture_output=True, check=False, timeout=600
        )
        if done.returncode != 0:
            raise SystemExit(f"{argv[:4]} under strace failed: {done.stderr[-2000:]!r}")
        total = [line.split() for line in out.read().splitlines() if line.endswith("total")]
    return int(total[-1][3]) if total else None


def syscalls_each(kind: str, count: int, folder: Path) -> tuple[float | None, float | None]:
    """Per item/node: (shoal, peer) system calls, from runs of `count` and `count // 10`."""
    small = max(1, count // 10)
    width = 2 if kind == "fan-out" else 1
    shoal_bin = str(Path(sys.executable).with_name("shoal"))
    found: dict[str, list[int | None]] = {"shoal": [], "peer": []}
    for size in (count, small):
        path = folder / f"{kind}-{size}.yaml"
        path.write_text(json.dumps(manifest(kind, size)), encoding="utf-8")
        work = folder / "strace-work"
        shoal_argv = [shoal_bin, "run", "--plain", "--quiet", "--workdir", str(work), str(path)]
        found["shoal"].append(syscalls(shoal_argv))
        shutil.rmtree(work, ignore_errors=True)
        found["peer"].append(syscalls([sys.executable, "-c", PEER, str(size), str(width), TRUE]))
    each: list[float | None] = []
    for name in ("shoal", "peer"):
        big, little = found[name]
        each.append(None if big is None or little is None else (big - little) / (count - small))
    return each[0], each[1]


def measure(kind: str, count: int, repeat: int, folder: Path) -> None:
    path = folder / f"{kind}.yaml"
    path.write_text(json.dumps(manifest(kind, count)), encoding="utf-8")
    width = 2 if kind == "fan-out" else 1
    cpu: dict[str, list[float]] = {"shoal": [], "asyncio": []}
    turns: dict[str, list[int]] = {"shoal": [], "asyncio": []}
    for _ in range(repeat):
        for name in ("shoal", "asyncio"):
            if name == "shoal":
                seconds, loops = run_shoal(path, folder / "work")
            else:
                seconds, loops = run_peer(count, width)
            cpu[name].append(seconds)
            turns[name].append(loops)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{kind} of true x{count} (parallelism {width})   load {load}")
    shoal_sys, peer_sys = syscalls_each(kind, count, folder)
    for name, calls in (("shoal", shoal_sys), ("asyncio", peer_sys)):
        ms = [1000 * c / count for c in cpu[name]]
        median = statistics.median(ms)
        ratio = "" if name == "shoal" else (
            f"  shoal/asyncio {statistics.median(cpu['shoal']) / statistics.median(cpu[name]):.2f}x"
        )  # fmt: skip
        per_turns = statistics.median(turns[name]) / count
        counted = "" if calls is None else f", {calls:.1f} syscalls"
        print(
            f"  {name:<8} parent cpu {median:.3f} ms each ({min(ms):.3f}-{max(ms):.3f}), "
            f"{per_turns:.2f} loop turns{counted}{ratio}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=1000, help="fan-out items")
    parser.add_argument("--chain", type=int, default=200, help="chain nodes")
    parser.add_argument("--repeat", type=int, default=5, help="rounds per case")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} cpus; {args.repeat} rounds per case")
    if shutil.which("strace") is None:
        print("strace not installed: no system-call counts")
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        measure("fan-out", args.items, args.repeat, Path(tmp))
        measure("chain", args.chain, args.repeat, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
