"""Throughput of one and of three sharded operators against the control plane's own limit.

Shaped like CNOE's Argo Workflows load test: one-node workflows submitted at a rising
rate, on the test control plane (`tests/support`: real kube-apiserver, etcd,
controller-manager, scheduler and the node agent that runs pods as local processes).
Three subjects, each in a namespace of its own, in one run:

  bare Jobs    the Job the operator would create for the node, created directly by this
               script: the floor (what the control plane and node agent sustain alone)
  1 replica    `shoal operator` without sharding
  3 replicas   three `shoal operator --shards 32` processes sharing the namespace

Each rate of the ladder (workflows/min) runs for `--window` seconds; it is sustained
when every item of the window finishes within the window plus a grace of half of it.
Reported per subject: the highest sustained rate and its ratio to the bare Jobs' (on
2 cores the control plane, not the operator, is the cap: ratios, not absolute rates),
the queue latency p50/p99 (workflow created → its first Job seen by a watch here), and
operator CPU per workflow. The machine's load is printed with the figures.

    .venv/bin/python bench/throughput.py [--rates 30,60,120,240] [--window 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from cluster_parts import (  # noqa: E402
    IMAGE,
    JOB,
    BenchError,
    apply_crds,
    bare_job,
    cpu_delta,
    cpu_snapshot,
    cpu_table,
    create_namespace,
    machine_cpu_seconds,
    percentile,
    process_cpu,
    workflow,
)
from support.controlplane import ControlPlane  # noqa: E402
from support.procs import Server, free_port, log_tail  # noqa: E402

from shoal.kube.api import KubeApi, jobs_path, workflows_path  # noqa: E402

WORKFLOW_LABEL = "shoal.dev/workflow"
IDLE_SECONDS = 10.0
TARGET_ONE_REPLICA = 0.8
"""1 replica sustains at least this share of the bare-Job rate (docs/scaling.md)."""


@dataclass
class Stage:
    """What one rate of the ladder observed, by item name (perf_counter times)."""

    rate: float
    submitted: dict[str, float] = field(default_factory=dict)
    first_job: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)


class Observer:
    """List+watch of the namespace's Jobs (and Workflows): first Job and end per item."""

    def __init__(self, api: KubeApi, namespace: str, bare: bool) -> None:
        self.api, self.namespace, self.bare = api, namespace, bare
        self.stage: Stage | None = None
        self.changed = asyncio.Event()
        """Set when an item finishes."""

    def _item(self, obj: dict[str, Any]) -> str | None:
        meta = obj.get("metadata") or {}
        if self.bare:
            return str(meta.get("name"))
        owners = meta.get("ownerReferences") or []
        return str(owners[0].get("name")) if owners else None

    def on_job(self, obj: dict[str, Any], at: float) -> None:
        stage, item = self.stage, self._item(obj)
        if stage is None or item not in stage.submitted:
            return
        stage.first_job.setdefault(item, at)
        if self.bare and (obj.get("status") or {}).get("succeeded"):
            stage.finished.setdefault(item, at)
            self.changed.set()

    def on_workflow(self, obj: dict[str, Any], at: float) -> None:
        stage, name = self.stage, str((obj.get("metadata") or {}).get("name"))
        succeeded = (obj.get("status") or {}).get("phase") == "Succeeded"
        if stage is not None and name in stage.submitted and succeeded:
            stage.finished.setdefault(name, at)
            self.changed.set()

    async def follow(self, path: str, handle: Any) -> None:
        import json

        listing = await self.api.get(path)
        version = listing["metadata"]["resourceVersion"]
        while True:
            params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": 240}
            try:
                async for line in self.api.lines(path, **params):
                    at = time.perf_counter()
                    event = json.loads(line) if line else {}
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        version = (await self.api.get(path))["metadata"]["resourceVersion"]
                        break
                    version = obj["metadata"]["resourceVersion"]
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        handle(obj, at)
            except (httpx.HTTPError, OSError):
                await asyncio.sleep(0.2)


async def submit(api: KubeApi, namespace: str, stage: Stage, window: float, bare: bool) -> None:
    """Create one item every 60/rate seconds for `window` seconds (never in a burst)."""
    count = max(1, round(stage.rate * window / 60))
    start = time.perf_counter()
    prefix = f"r{int(stage.rate)}"

    async def one(i: int) -> None:
        name = f"{prefix}-{i}"
        await asyncio.sleep(max(0.0, start + i * 60 / stage.rate - time.perf_counter()))
        stage.submitted[name] = time.perf_counter()
        if bare:
            await api.create(jobs_path(namespace), bare_job(namespace, name, i))
        else:
            node = {"name": "n", "job": JOB, "args": {"i": i}}
            await api.create(workflows_path(namespace), workflow(name, {"nodes": [node]}))

    await asyncio.gather(*(one(i) for i in range(count)))


async def run_stage(
    api: KubeApi, observer: Observer, namespace: str, rate: float, window: float
) -> tuple[Stage, bool]:
    stage = Stage(rate)
    observer.stage = stage
    await submit(api, namespace, stage, window, observer.bare)
    deadline = time.perf_counter() + window / 2 + 10
    while len(stage.finished) < len(stage.submitted):
        observer.changed.clear()
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(observer.changed.wait(), remaining)
    return stage, len(stage.finished) == len(stage.submitted)


@dataclass
class Subject:
    name: str
    replicas: int
    best: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    workflows: int = 0
    idle_cpu: float = 0.0
    """The operators' CPU over the same time with nothing to do (kopf, the lease loop)."""
    where: dict[str, float] = field(default_factory=dict)
    """CPU seconds per process of the run (control plane, pods, operators) over the ladder."""
    note: str = ""


def start_operators(kubeconfig: Path, namespace: str, replicas: int, logs: Path) -> list[Server]:
    servers = []
    for i in range(replicas):
        argv = [
            str(REPO / ".venv" / "bin" / "shoal"),
            *("operator", "--kubeconfig", str(kubeconfig), "--namespace", namespace),
            *("--metrics-port", str(free_port()), "--metrics-host", "127.0.0.1"),
            *("--no-restricted", "--worker-image", IMAGE, "--log-level", "WARNING"),
        ]
        if replicas > 1:
            argv += ["--shards", "32", "--identity", f"r{i}", "--lease-namespace", namespace]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
        servers.append(Server(f"operator-{i}", argv, logs / f"{namespace}-{i}.log", env=env))
    return servers


async def measure(
    api: KubeApi,
    kubeconfig: Path,
    subject: Subject,
    args: argparse.Namespace,
    logs: Path,
    pids: dict[str, int],
) -> None:
    namespace = f"tp-{subject.name}"
    await create_namespace(api, namespace)
    bare = subject.replicas == 0
    observer = Observer(api, namespace, bare)
    tasks = [asyncio.create_task(observer.follow(jobs_path(namespace), observer.on_job))]
    if not bare:
        path = workflows_path(namespace)
        tasks.append(asyncio.create_task(observer.follow(path, observer.on_workflow)))
    servers = [] if bare else start_operators(kubeconfig, namespace, subject.replicas, logs)
    try:
        await warm_up(api, observer, namespace, servers)
        idle = sum(process_cpu(s.pid)[0] for s in servers)
        idle_started = time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)  # a measurement window: the operators' idle cost
        cpu_before = sum(process_cpu(s.pid)[0] for s in servers)
        idle_rate = (cpu_before - idle) / (time.perf_counter() - idle_started)
        ladder_started = time.perf_counter()
        where_before = cpu_snapshot({**pids, **{s.name: s.pid for s in servers}})
        for rate in args.rates:
            stage, ok = await run_stage(api, observer, namespace, rate, args.window)
            subject.workflows += len(stage.submitted)
            print(
                f"  {subject.name}: {rate:g}/min {'sustained' if ok else 'NOT sustained'}",
                flush=True,
            )
            if not ok:
                subject.note = f"{len(stage.finished)}/{len(stage.submitted)} at {rate:g}/min"
                break
            subject.best = rate
            subject.latencies += [stage.first_job[n] - stage.submitted[n] for n in stage.first_job]
        for server in servers:
            server.check_alive()
        subject.cpu = sum(process_cpu(s.pid)[0] for s in servers) - cpu_before
        subject.idle_cpu = idle_rate * (time.perf_counter() - ladder_started)
        where_after = cpu_snapshot({**pids, **{s.name: s.pid for s in servers}})
        subject.where = cpu_delta(where_before, where_after)
    finally:
        for task in tasks:
            task.cancel()
        for server in servers:
            await asyncio.to_thread(server.stop, 15)


async def warm_up(api: KubeApi, observer: Observer, namespace: str, servers: list[Server]) -> None:
    """One item end to end first (operators started, shards spread, images warm)."""
    stage, ok = await run_stage(api, observer, namespace, 60.0, 1.0)
    deadline = time.perf_counter() + 90
    while not ok and time.perf_counter() < deadline:
        for server in servers:
            server.check_alive()
        observer.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(observer.changed.wait(), 1.0)
        ok = len(stage.finished) == len(stage.submitted)
    if not ok:
        tails = "\n".join(log_tail(s.log) for s in servers)
        raise BenchError(f"{namespace}: the warm-up item did not finish within 90s\n{tails}")


def report(subjects: list[Subject], load: tuple[float, float], busy: float, wall: float) -> None:
    floor = subjects[0].best or float("nan")
    print(
        "\nsubject      sustained/min  ratio  queue p50   p99     "
        "operator CPU/workflow (net of idle)"
    )
    for s in subjects:
        lat = s.latencies or [float("nan")]
        cpu = "-"
        if s.replicas and s.workflows:
            net = (s.cpu - s.idle_cpu) / s.workflows * 1000
            cpu = f"{s.cpu / s.workflows * 1000:.0f} ms ({net:.0f} ms)"
        print(
            f"{s.name:<12} {s.best:>13g}  {s.best / floor:5.2f}  "
            f"{percentile(lat, 50) * 1000:6.0f} ms {percentile(lat, 99) * 1000:6.0f} ms  {cpu:>18}"
            + (f"   (stopped: {s.note})" if s.note else "")
        )
    print("\nwhere the CPU went over each ladder, ms per item (busiest first):")
    for s in subjects:
        per_item = {k: v / max(1, s.workflows) for k, v in s.where.items()}
        print(f"  {s.name:<12} {cpu_table(per_item, None)}")
    one = next(s for s in subjects if s.replicas == 1)
    three = next(s for s in subjects if s.replicas == 3)
    print(
        f"\n1 replica / bare Jobs = {one.best / floor:.2f} (target >= {TARGET_ONE_REPLICA}); "
        f"3 replicas / 1 replica = {three.best / (one.best or float('nan')):.2f} (target >= 1)"
    )
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} before, {load[1]:.2f} "
        f"after; busy {busy / wall / (os.cpu_count() or 1) * 100:.0f}% of all cores "
        f"over {wall:.0f}s"
    )


async def run(args: argparse.Namespace, kubeconfig: Path, logs: Path, pids: dict[str, int]) -> None:
    api = KubeApi.connect(str(kubeconfig))
    subjects = [Subject("bare-jobs", 0), Subject("1-replica", 1), Subject("3-replicas", 3)]
    load_before, busy_before, started = os.getloadavg()[0], machine_cpu_seconds(), time.time()
    try:
        for subject in subjects:
            print(f"{subject.name} ...", flush=True)
            await measure(api, kubeconfig, subject, args, logs, pids)
    finally:
        await api.close()
    busy = machine_cpu_seconds() - busy_before
    report(subjects, (load_before, os.getloadavg()[0]), busy, time.time() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="30,60,120,240", help="workflows/min, rising")
    parser.add_argument("--window", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--kubeconfig", help="use this running cluster instead of starting one")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    root = Path(tempfile.mkdtemp(prefix="shoal-throughput-"))
    plane = None
    try:
        if args.kubeconfig:
            kubeconfig = Path(args.kubeconfig)
        else:
            print(f"starting the test control plane in {root} ...", flush=True)
            plane = ControlPlane(root / "cluster")
            plane.start()
            kubeconfig = plane.kubeconfig
        apply_crds(kubeconfig)
        pids = {} if plane is None else {s.name: s.pid for s in plane.servers}
        asyncio.run(run(args, kubeconfig, root / "logs", pids))
    except BenchError as err:
        print(f"benchmark failed: {err}; logs in {root}", file=sys.stderr)
        return 1
    finally:
        if plane is not None:
            plane.stop()
    with contextlib.suppress(OSError):
        shutil.rmtree(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
