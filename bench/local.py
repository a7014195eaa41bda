"""Orchestration overhead of the local executor, as ratios to a same-run baseline.

Two shapes, each of a trivial job (`shoal.echo`, which returns its one argument):
  chain:   100 nodes, each depending on the previous one (latency between nodes),
  fan-out: one node over 500 items with parallelism 20 (throughput).

The baseline spawns the very same worker command the same number of times with the same
concurrency and reads its output the same way, but with no planner, no expressions and
no state: what is left when orchestration costs nothing. Each shape alternates baseline
and orchestrated runs `--repeat` times and compares medians, because absolute times on
a shared 2-core machine are noisy. Target: both ratios <= 1.15.

    .venv/bin/python bench/local.py [--repeat 3] [--chain 100] [--items 500] [--parallelism 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from shoal.api.workflow import Node, WorkflowSpec
from shoal.core.collector import StreamCollector
from shoal.core.compiled import CompiledWorkflow, WorkflowMeta
from shoal.core.state import RunState, TaskFinished
from shoal.core.validation import compile_workflow
from shoal.local.executor import LocalExecutor
from shoal.local.process import worker_argv
from shoal_worker.protocol import Message


class SilentReporter:
    """Reports nothing: the benchmark measures orchestration, not terminal output."""

    def begin(self, wf: CompiledWorkflow, state: RunState) -> None: ...
    def decision(self, d: object, state: RunState) -> None: ...
    def message(self, node: str, index: int | None, msg: Message) -> None: ...
    def task_finished(self, event: TaskFinished, state: RunState) -> None: ...
    def end(self, wf: CompiledWorkflow, state: RunState) -> None: ...


def chain_spec(length: int) -> WorkflowSpec:
    nodes = [
        Node(name=f"n{i}", job="shoal.echo", args={"i": i}, depends_on=[f"n{i - 1}"] if i else [])
        for i in range(length)
    ]
    return WorkflowSpec(nodes=nodes)


def fan_out_spec(items: int, parallelism: int) -> WorkflowSpec:
    node = Node(
        name="items",
        job="shoal.echo",
        for_each=list(range(items)),
        item_arg="i",
        parallelism=parallelism,
    )
    return WorkflowSpec(nodes=[node])


async def orchestrated(spec: WorkflowSpec, workdir: Path) -> float:
    """Wall time of a whole run through planner and local executor."""
    wf = compile_workflow(spec, WorkflowMeta(name="bench"))
    executor = LocalExecutor(wf, workdir=workdir, cwd=workdir, reporter=SilentReporter())
    start = time.perf_counter()
    state = await executor.run()
    elapsed = time.perf_counter() - start
    if state.phase.value != "Succeeded":
        raise SystemExit(f"benchmark run ended {state.phase.value}: {state.message}")
    return elapsed


async def baseline(count: int, concurrency: int, workdir: Path) -> float:
    """Wall time of spawning the same worker `count` times, `concurrency` at once."""
    args_file = workdir / "args.json"
    args_file.write_text(json.dumps({"i": 0}))
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            termination = workdir / f"term-{i}"
            proc = await asyncio.create_subprocess_exec(
                *worker_argv("shoal.echo", args_file, termination),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            collector = StreamCollector()
            assert proc.stdout is not None
            while line := await proc.stdout.readline():
                collector.feed(line.decode())
            await proc.communicate()
            if proc.returncode != 0:
                raise SystemExit(f"baseline worker failed with {proc.returncode}")

    start = time.perf_counter()
    if concurrency == 1:
        for i in range(count):
            await one(i)
    else:
        await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - start


async def measure(
    label: str, spec: WorkflowSpec, count: int, concurrency: int, repeat: int
) -> float:
    base_times: list[float] = []
    run_times: list[float] = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
            base_times.append(await baseline(count, concurrency, Path(tmp)))
        with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
            run_times.append(await orchestrated(spec, Path(tmp)))
    base, run = statistics.median(base_times), statistics.median(run_times)
    ratio = run / base
    print(
        f"{label:<28} baseline {base:7.2f}s  shoal {run:7.2f}s  ratio {ratio:5.3f}  "
        f"(median of {repeat}; per task {1000 * run / count:.1f} ms "
        f"vs {1000 * base / count:.1f} ms)"
    )
    return ratio


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=20)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}; job shoal.echo; target ratio <= 1.15")
    chain = await measure(
        f"chain of {args.chain}", chain_spec(args.chain), args.chain, 1, args.repeat
    )
    fan = await measure(
        f"fan-out {args.items} (par {args.parallelism})",
        fan_out_spec(args.items, args.parallelism),
        args.items,
        args.parallelism,
        args.repeat,
    )
    verdict = "within" if max(chain, fan) <= 1.15 else "OVER"
    print(f"chain ratio {chain:.3f}, fan-out ratio {fan:.3f}: {verdict} the 1.15 target")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
