"""What `shoal run` costs over spawning the same processes without it, measured in one run.

Every case runs through the real CLI (`shoal run FILE`, start-up included) and, in the same
round, through peers that spawn exactly the same child processes with the same concurrency
and nothing else:
  xargs / bash: `xargs -P N` for a fan-out, a bash loop for a chain (the floor);
  asyncio:      a bare Python asyncio spawner reading the children's pipes (what Python
                itself costs, start-up included);
  no-slice:     for a fan-out, `shoal run` itself with `SHOAL_SHORT_SLICE=0`, so the
                effect of its scheduling hint (local/short_slice.py) is seen in the run.
Children: `true` as a command node (all orchestration, no work) and the Python worker
(`shoal.echo`, about 60 ms of CPU each, so only small sizes by default).

Rounds alternate the runners so load spikes hit each alike; every ratio is of medians, and
the spread (min-max) of each runner is printed next to it with the load average, so a
reader can judge the noise. Wall time is the figure of merit; CPU is of the runner and
all its children (RUSAGE_CHILDREN).

Targets (issue 17): a 1,000-item fan-out of `true` at parallelism 2 <= 1.5x xargs -P 2;
a 50-node chain of `true` <= 4x a bash loop.

    .venv/bin/python bench/local.py [--quick] [--repeat N] [--python-items N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TRUE = shutil.which("true") or "/bin/true"
SHOAL = str(Path(sys.executable).with_name("shoal"))
WORKER = [sys.executable, "-m", "shoal_worker.runner", "run", "--job", "shoal.echo"]
ECHO_ARGS = json.dumps({"i": 0})

SPAWNER = """
import asyncio, sys
count, width, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
async def one(gate):
    async with gate:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True)
        await proc.communicate()
        if proc.returncode:
            raise SystemExit(proc.returncode)
async def main():
    gate = asyncio.Semaphore(width)
    await asyncio.gather(*(one(gate) for _ in range(count)))
asyncio.run(main())
"""
"""A bare asyncio spawner: `count` children, `width` at a time, pipes read to the end."""


@dataclass(frozen=True)
class Case:
    label: str
    manifest: dict[str, object]
    count: int
    width: int
    child: list[str]
    target: tuple[str, float] | None = None
    """(peer, ratio) this case must stay within, if it is one of the issue's targets."""


def workflow(name: str, nodes: list[dict[str, object]]) -> dict[str, object]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"nodes": nodes},
    }


def node(child: str, name: str, **fields: object) -> dict[str, object]:
    """A node running `true` (command) or the Python worker (job)."""
    if child == "true":
        return {"name": name, "command": [TRUE], **fields}
    if "forEach" in fields:
        return {"name": name, "job": "shoal.echo", "itemArg": "i", **fields}
    return {"name": name, "job": "shoal.echo", "args": {"i": 0}, **fields}


def fan_out(child: str, items: int, width: int = 2, target: float | None = None) -> Case:
    each = node(child, "each", forEach=list(range(items)), parallelism=width)
    argv = [TRUE] if child == "true" else WORKER
    peer = ("xargs", target) if target else None
    label = f"fan-out {child} x{items} (-P {width})"
    return Case(label, workflow("fan", [each]), items, width, argv, peer)


def chain(child: str, length: int, target: float | None = None) -> Case:
    nodes = [
        node(child, f"n{i}", **({"dependsOn": [f"n{i - 1}"]} if i else {})) for i in range(length)
    ]
    argv = [TRUE] if child == "true" else WORKER
    peer = ("bash", target) if target else None
    return Case(f"chain {child} x{length}", workflow("chain", nodes), length, 1, argv, peer)


def timed(argv: list[str], **kwargs: object) -> tuple[float, float]:
    """Wall and CPU seconds (the process and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({done.returncode}): {done.stderr[-2000:]!r}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


Runner = Callable[[], tuple[float, float]]


def runners(case: Case, tmp: Path, env: dict[str, str]) -> dict[str, Runner]:
    manifest = tmp / "bench.yaml"
    manifest.write_text(json.dumps(case.manifest), encoding="utf-8")
    quoted = " ".join(case.child)
    shoal = [SHOAL, "run", "--plain", "--quiet", "--workdir", str(tmp / "work"), str(manifest)]
    peers: dict[str, Runner] = {
        "shoal": lambda: timed(shoal, env=env),
        "asyncio": lambda: timed(
            [sys.executable, "-c", SPAWNER, str(case.count), str(case.width), *case.child],
            env=env,
        ),
    }
    if case.width > 1:
        peers["no-slice"] = lambda: timed(shoal, env={**env, "SHOAL_SHORT_SLICE": "0"})
    if case.width == 1:
        loop = f"for ((i=0; i<{case.count}; i++)); do {quoted} >/dev/null; done"
        peers["bash"] = lambda: timed(["bash", "-c", loop], env=env)
    else:
        feed = "".join(f"{i}\n" for i in range(case.count)).encode()
        xargs = ["xargs", "-P", str(case.width), "-I{}", *case.child]
        peers["xargs"] = lambda: timed(xargs, input=feed, env=env)
    return peers


def measure(case: Case, repeat: int) -> bool:
    """Run every runner `repeat` times, interleaved; print the medians and ratios."""
    env = {**os.environ, "SHOAL_ARGS": ECHO_ARGS, "SHOAL_TERMINATION_MESSAGE_PATH": os.devnull}
    walls: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        todo = runners(case, Path(tmp), env)
        for _ in range(repeat):
            for name, run in todo.items():
                shutil.rmtree(Path(tmp) / "work", ignore_errors=True)
                wall, cpu = run()
                walls.setdefault(name, []).append(wall)
                cpus.setdefault(name, []).append(cpu)
    shoal = statistics.median(walls["shoal"])
    print(f"{case.label}   load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name in todo:
        wall, cpu = statistics.median(walls[name]), statistics.median(cpus[name])
        spread = f"{min(walls[name]):.3f}-{max(walls[name]):.3f}s"
        versus = "" if name == "shoal" else f"  shoal/{name} {shoal / wall:5.2f}x"
        per = 1000 * wall / case.count
        each = f"{spread}, {per:.2f} ms each"
        print(f"  {name:<8} wall {wall:7.3f}s ({each})  cpu {cpu:7.3f}s{versus}")
    if case.target is None:
        return True
    peer, limit = case.target
    ratio = shoal / statistics.median(walls[peer])
    verdict = "within" if ratio <= limit else "OVER"
    print(f"  TARGET shoal/{peer} {ratio:.2f}x <= {limit}x: {verdict}")
    return ratio <= limit


def cases(quick: bool, python_items: int) -> list[Case]:
    if quick:
        return [
            fan_out("true", 100),
            fan_out("true", 1000, target=1.5),
            chain("true", 50, target=4.0),
            chain("true", 100),
            fan_out("python", min(python_items, 20)),
        ]
    return [
        fan_out("true", 100),
        fan_out("true", 1000, target=1.5),
        fan_out("true", 10_000),
        chain("true", 50, target=4.0),
        chain("true", 100),
        chain("true", 1000),
        fan_out("python", python_items),
        chain("python", python_items),
    ]


def compile_project() -> list[str]:
    """Byte-compile the shoal and shoal_worker sources, as installing a package does.

    Under PYTHONDONTWRITEBYTECODE (set in some shells and CI images) an editable checkout
    would be compiled again by every `shoal run`: about 100 ms of start-up that no
    installed shoal pays, and more than the whole 50-node chain's floor.
    """
    import compileall
    import importlib.util

    done = []
    for package in ("shoal", "shoal_worker"):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = next(iter(spec.submodule_search_locations))
        compileall.compile_dir(folder, quiet=1)
        done.append(folder)
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 rounds (~1 min)")
    parser.add_argument("--repeat", type=int, help="rounds per case (default 5, quick 3)")
    parser.add_argument(
        "--python-items", type=int, default=100, help="items/nodes of the Python-worker cases"
    )
    args = parser.parse_args()
    repeat = args.repeat or (3 if args.quick else 5)
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} cpus; {repeat} rounds per case")
    print(f"bytecode compiled (as an install does): {', '.join(compile_project())}")
    ok = [measure(case, repeat) for case in cases(args.quick, args.python_items)]
    print("all targets met" if all(ok) else "some target missed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
