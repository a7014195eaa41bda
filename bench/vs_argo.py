"""Shoal against Argo Workflows on the same test control plane, same workloads, one run.

Starts the test control plane (real kube-apiserver, etcd, controller-manager, scheduler;
the node agent runs pods as local processes), Shoal's operator and two Argo
workflow-controllers (hack/argo/build.sh, v4.0.5): one with Argo's defaults, one with
the speed tuning its docs recommend (DEFAULT_REQUEUE_TIME=1s, --qps 50 --burst 75).
Each engine has a namespace of its own; every workload runs through each engine in
turn (the order rotates from one workload to the next), then as bare Jobs (the floor:
the same pods, no engine). Every pod runs `echo` in the same image.

  chain    N nodes, each after the previous one: node-to-node gap (the predecessor's
           pod observed terminated -> the successor's pod observed created) p50/p99,
           and wall time (create -> Succeeded observed). Floor: N x a bare Job.
  fan-out  a node prints a list of M items, a fan-out over it runs at parallelism P:
           wall time; API write requests per item (the API server's
           apiserver_request_total, every client: engine, Job controller, node agent);
           the engine's controller CPU seconds and peak RSS (sampled from /proc);
           the finished workflow object's size. Floor: M bare Jobs, P at a time.
  burst    K one-node workflows created at once: time until all have finished.
           Floor: K bare Jobs created at once.

    .venv/bin/python bench/vs_argo.py [--scale 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import argo_peer  # noqa: E402
import vs_parts as parts  # noqa: E402
from cluster_parts import (  # noqa: E402
    BenchError,
    apply_crds,
    create_namespace,
    machine_cpu_seconds,
    start_operator,
    watch,
)
from support.controlplane import ControlPlane, default_images  # noqa: E402
from vs_parts import Seen, Table  # noqa: E402

from shoal.kube.api import KubeApi, jobs_path, pods_path, workflows_path  # noqa: E402
from shoal.kube.naming import LABEL_WORKFLOW  # noqa: E402


@dataclass
class Engine:
    name: str
    namespace: str
    pid: int
    path: Callable[..., str]
    chain: Callable[[str, int], dict[str, Any]]
    fan_out: Callable[[str, int, int], dict[str, Any]]
    single: Callable[[str], dict[str, Any]]


@dataclass
class Sizes:
    chain: int
    items: int
    parallelism: int
    burst: int
    bare: int


@dataclass
class Bench:
    api: KubeApi
    seen: Seen
    table: Table
    pids: dict[str, int]
    floor_ns: str

    async def run(self, engine: Engine, manifest: dict[str, Any], within: float) -> float:
        """Create a workflow and wait until it finished; the wall time. Fails unless it
        Succeeded."""
        name = manifest["metadata"]["name"]
        key = (engine.namespace, name)
        start = time.perf_counter()
        await self.api.create(engine.path(engine.namespace), manifest)
        done = lambda: self.seen.phases.get(key, ("", 0.0))[0] in parts.FINISHED  # noqa: E731
        await self.seen.until(f"{engine.name} workflow {name} to finish", done, within)
        phase, at = self.seen.phases[key]
        if phase != "Succeeded":
            obj = await self.api.get(engine.path(engine.namespace, name))
            message = (obj.get("status") or {}).get("message")
            raise BenchError(f"{engine.name} workflow {name} ended {phase}: {message}")
        return at - start

    async def clean(self, engine: Engine, names: list[str]) -> None:
        """Delete the workflows and wait until their pods are gone (runs do not overlap)."""
        sem = asyncio.Semaphore(20)

        async def one(name: str) -> None:
            async with sem:
                await self.api.delete(engine.path(engine.namespace, name))

        await asyncio.gather(*(one(n) for n in names))
        live = self.seen.live.setdefault(engine.namespace, set())
        await self.seen.until(f"{engine.name}'s pods to go", lambda: not live, 300)

    async def chain(self, engine: Engine, n: int) -> dict[str, float]:
        name = f"chain-{uuid.uuid4().hex[:6]}"
        wall = await self.run(engine, engine.chain(name, n), 120 + 30 * n)
        pods = self.seen.pods_of(engine.namespace, name)
        if len(pods) != n or any(p.terminated is None for p in pods):
            raise BenchError(f"{engine.name} chain: {len(pods)} pods observed for {n} nodes")
        gaps = [b.added - a.terminated for a, b in itertools.pairwise(pods) if a.terminated]
        await self.clean(engine, [name])
        return {"wall": wall, "p50": parts.percentile(gaps, 50), "p99": parts.percentile(gaps, 99)}

    async def fan_out(self, engine: Engine, items: int, par: int) -> dict[str, float]:
        name = f"fan-{uuid.uuid4().hex[:6]}"
        manifest = engine.fan_out(name, items, par)
        writes = await parts.writes_settled(self.api)
        cm = self.pids["kube-controller-manager"]
        cpu, cm_cpu = parts.cpu_seconds(engine.pid), parts.cpu_seconds(cm)
        pods_cpu, machine = self.pods_cpu(), machine_cpu_seconds()
        peak = parts.rss_kib(engine.pid)

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, parts.rss_kib(engine.pid))
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        try:
            wall = await self.run(engine, manifest, 300 + 3 * items)
            after = await parts.writes_settled(self.api)
        finally:
            sampler.cancel()
        delta = parts.writes_delta(writes, after)
        obj = await self.api.get(engine.path(engine.namespace, name))
        size = len(parts.json.dumps(obj))
        top = sorted(delta.items(), key=lambda kv: -kv[1])[:5]
        self.table.notes.append(
            f"{engine.name} fan-out writes per item by resource: "
            + ", ".join(f"{k} {v / items:.2f}" for k, v in top)
        )
        figures = {
            "wall": wall,
            "writes": sum(delta.values()) / items,
            "cpu": parts.cpu_seconds(engine.pid) - cpu,
            "cm_cpu": parts.cpu_seconds(cm) - cm_cpu,
            "pods_cpu": (self.pods_cpu() - pods_cpu) / items,
            "machine_cpu": (machine_cpu_seconds() - machine) / items,
            "rss": float(peak),
            "size": float(size),
        }
        await self.clean(engine, [name])
        return figures

    def pods_cpu(self) -> float:
        """CPU the pods' containers used so far (the node agent's reaped children)."""
        return parts.children_cpu_seconds(self.pids["nodeagent"])

    async def burst(self, engine: Engine, count: int) -> float:
        run = uuid.uuid4().hex[:6]
        names = [f"one-{run}-{k}" for k in range(count)]
        start = time.perf_counter()
        await asyncio.gather(*(self.run(engine, engine.single(n), 300 + 5 * count) for n in names))
        end = max(self.seen.phases[(engine.namespace, n)][1] for n in names)
        await self.clean(engine, names)
        return end - start

    # -- the floor: bare Jobs, no engine ---------------------------------------------

    async def bare(self, names: list[str], parallelism: int, within: float) -> float:
        """Create Jobs, `parallelism` in flight; create -> last pod observed Succeeded."""
        ns, seen = self.floor_ns, self.seen
        start = time.perf_counter()
        pending = list(names)
        flight: set[str] = set()
        deadline = time.monotonic() + within

        def ended(job: str) -> bool:
            pods = seen.pods_of(ns, job)
            return bool(pods) and pods[-1].phase in ("Succeeded", "Failed")

        while pending or flight:
            for job in [j for j in flight if ended(j)]:
                if seen.pods_of(ns, job)[-1].phase != "Succeeded":
                    raise BenchError(f"bare Job {job}'s pod failed")
                flight.discard(job)
            batch = pending[: max(0, parallelism - len(flight))]
            del pending[: len(batch)]
            flight.update(batch)
            await asyncio.gather(
                *(self.api.create(jobs_path(ns), parts.bare_job(j)) for j in batch)
            )
            if not flight:
                break
            if time.monotonic() > deadline:
                left = len(flight) + len(pending)
                raise BenchError(f"bare Jobs: {left} unfinished after {within:.0f}s")
            seen.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(seen.changed.wait(), 1.0)
        end = max(self._succeeded(j) for j in names)
        live = seen.live.setdefault(ns, set())
        await seen.until("bare Jobs' pods to go (ttlSecondsAfterFinished 0)", lambda: not live, 300)
        return end - start

    def _succeeded(self, job: str) -> float:
        pod = self.seen.pods_of(self.floor_ns, job)[-1]
        assert pod.terminated is not None
        return pod.terminated

    async def bare_one(self, count: int) -> float:
        """Median of `count` bare Jobs run one at a time."""
        times = []
        for _ in range(count):
            times.append(await self.bare([f"bare-{uuid.uuid4().hex[:8]}"], 1, 120))
        return parts.median(times)


# -- the run ---------------------------------------------------------------------------


def rotate(engines: list[Engine], k: int) -> list[Engine]:
    """Engine order for the k-th workload: each goes first in turn (load drifts)."""
    k %= len(engines)
    return engines[k:] + engines[:k]


def show(figures: dict[str, float]) -> str:
    """Figures as they come, so a run that fails later still shows them."""
    return ", ".join(f"{k} {v:.3f}" for k, v in figures.items())


async def compare(bench: Bench, engines: list[Engine], sizes: Sizes) -> None:
    t = bench.table
    n, m, p, k = sizes.chain, sizes.items, sizes.parallelism, sizes.burst
    floor_one = await bench.bare_one(sizes.bare)
    print(f"bare Job floor: {floor_one:.2f} s", flush=True)
    t.notes.append(f"bare Job (create -> pod terminated), median of {sizes.bare}: {floor_one:.2f}s")

    chain: dict[str, dict[str, float]] = {}
    for engine in rotate(engines, 0):
        print(f"chain of {n}: {engine.name} ...", flush=True)
        chain[engine.name] = await bench.chain(engine, n)
        print(f"  {show(chain[engine.name])}", flush=True)
    t.add(f"chain {n}: gap p50", {e: v["p50"] for e, v in chain.items()}, None, "ms")
    t.add(f"chain {n}: gap p99", {e: v["p99"] for e, v in chain.items()}, None, "ms")
    t.add(f"chain {n}: wall", {e: v["wall"] for e, v in chain.items()}, n * floor_one, "s")

    fan: dict[str, dict[str, float]] = {}
    for engine in rotate(engines, 1):
        print(f"fan-out of {m} at parallelism {p}: {engine.name} ...", flush=True)
        fan[engine.name] = await bench.fan_out(engine, m, p)
        print(f"  {show(fan[engine.name])}", flush=True)
    print(f"fan-out floor: {m} bare Jobs, {p} at a time ...", flush=True)
    before = await parts.writes_settled(bench.api)
    pods_cpu, machine = bench.pods_cpu(), machine_cpu_seconds()
    names = [f"fan-{uuid.uuid4().hex[:6]}-{i}" for i in range(m)]
    fan_floor = await bench.bare(names, p, 300 + 3 * m)
    floor_writes = parts.writes_delta(before, await parts.writes_settled(bench.api))
    floor_pods_cpu = (bench.pods_cpu() - pods_cpu) / m
    floor_machine = (machine_cpu_seconds() - machine) / m
    print(f"  {fan_floor:.1f} s, {sum(floor_writes.values()) / m:.2f} writes/item", flush=True)
    label = f"fan-out {m} (par {p})"
    t.add(f"{label}: wall", {e: v["wall"] for e, v in fan.items()}, fan_floor, "s")
    t.add(f"{label}: API writes/item", {e: v["writes"] for e, v in fan.items()},
          sum(floor_writes.values()) / m, "x")  # fmt: skip
    t.add(f"{label}: engine CPU", {e: v["cpu"] for e, v in fan.items()}, None, "s")
    t.add(f"{label}: controller-manager CPU", {e: v["cm_cpu"] for e, v in fan.items()}, None, "s")
    t.add(f"{label}: pods' CPU per item", {e: v["pods_cpu"] for e, v in fan.items()},
          floor_pods_cpu, "ms")  # fmt: skip
    t.add(f"{label}: machine CPU per item", {e: v["machine_cpu"] for e, v in fan.items()},
          floor_machine, "ms")  # fmt: skip
    t.add(f"{label}: engine peak RSS", {e: v["rss"] for e, v in fan.items()}, None, "MiB")
    t.add(f"{label}: object size", {e: v["size"] for e, v in fan.items()}, None, "KiB")

    burst: dict[str, float] = {}
    for engine in rotate(engines, 2):
        print(f"{k} one-node workflows at once: {engine.name} ...", flush=True)
        burst[engine.name] = await bench.burst(engine, k)
        print(f"  {burst[engine.name]:.1f} s", flush=True)
    print(f"burst floor: {k} bare Jobs at once ...", flush=True)
    names = [f"one-{uuid.uuid4().hex[:6]}-{i}" for i in range(k)]
    burst_floor = await bench.bare(names, k, 300 + 5 * k)
    t.add(f"{k} one-node workflows: all finished", burst, burst_floor, "s")


async def start_watches(
    api: KubeApi, seen: Seen, watched: list[tuple[str, str, str]]
) -> list[asyncio.Task[None]]:
    """Pod and workflow watches: (namespace, pod label naming the owner, workflow path)."""
    tasks = []
    for ns, label, path in watched:
        pairs = [(pods_path(ns), seen.pod_handler(label))]
        if path:
            pairs.append((path, seen.on_workflow))
        for url, handler in pairs:
            started = asyncio.Event()
            tasks.append(asyncio.create_task(watch(api, url, handler, seen, started)))  # type: ignore[arg-type]
            await asyncio.wait_for(started.wait(), 30)
    return tasks


async def run(
    args: argparse.Namespace, kubeconfig: Path, logs: Path, pids: dict[str, int], argo: Path
) -> Table:
    api = KubeApi.connect(str(kubeconfig))
    run_id = uuid.uuid4().hex[:5]
    ns = {e: f"{e}-{run_id}" for e in ("shoal", "argo-default", "argo-tuned", "floor")}
    seen = Seen()
    tasks: list[asyncio.Task[None]] = []
    servers: list[Any] = []
    try:
        for name in ns.values():
            await create_namespace(api, name)
        operator = await start_operator(kubeconfig, ns["shoal"], logs, "WARNING", None)
        servers.append(operator.server)
        engines = [
            Engine("shoal", ns["shoal"], operator.pid, workflows_path,
                   parts.shoal_chain, parts.shoal_fan_out, parts.shoal_single),
        ]  # fmt: skip
        for tuned in (False, True):
            name = "argo-tuned" if tuned else "argo-default"
            ctl = await argo_peer.start_controller(argo, kubeconfig, ns[name], logs, tuned, api)
            servers.append(ctl.server)
            engines.append(
                Engine(name, ns[name], ctl.pid, argo_peer.workflows_path,
                       argo_peer.chain, argo_peer.fan_out, argo_peer.single)
            )  # fmt: skip
        watched = [
            (e.namespace, LABEL_WORKFLOW if e.name == "shoal" else argo_peer.WORKFLOW_LABEL,
             e.path(e.namespace))
            for e in engines
        ]  # fmt: skip
        watched.append((ns["floor"], parts.JOB_LABEL, ""))
        tasks = await start_watches(api, seen, watched)
        table = Table([e.name for e in engines])
        bench = Bench(api, seen, table, pids, ns["floor"])
        print("engines: " + ", ".join(f"{e.name} pid {e.pid} in {e.namespace}" for e in engines))
        await compare(bench, engines, args.sizes)
        return table
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in reversed(servers):
            await asyncio.to_thread(server.stop, 15)
        await api.close()


@contextlib.contextmanager
def control_plane(
    args: argparse.Namespace, argo: Path
) -> Iterator[tuple[Path, Path, dict[str, int]]]:
    """The kubeconfig, a directory for logs, the control plane's pids; stops what it started."""
    root = Path(tempfile.mkdtemp(prefix="shoal-vs-argo-"))
    (root / "logs").mkdir()
    print(f"starting the test control plane in {root} ...", flush=True)
    # Argo's executor image runs argoexec; every other image rule stays as the tests have it.
    plane = ControlPlane(root / "cluster", images=argo_peer.image_rules(argo) + default_images())
    ok = False
    try:
        plane.start()
        apply_crds(plane.kubeconfig)
        argo_peer.apply_crds(plane.kubeconfig, argo)
        yield plane.kubeconfig, root / "logs", {s.name: s.pid for s in plane.servers}
        ok = True
    finally:
        plane.stop()
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs kept in {root}", file=sys.stderr)


def sizes_for(scale: float) -> Sizes:
    """The issue's sizes (30-node chain, 500 items at parallelism 50, 100 workflows) x scale."""
    items = max(10, round(500 * scale))
    return Sizes(
        chain=max(3, round(30 * scale)),
        items=items,
        parallelism=min(50, items),
        burst=max(5, round(100 * scale)),
        bare=5,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="x the issue's sizes (e.g. 0.2)")
    args = parser.parse_args()
    args.sizes = sizes_for(args.scale)

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    started = time.monotonic()
    load = os.getloadavg()
    try:
        argo = argo_peer.argo_dir()
        argo_peer.check_disk(args.sizes.items, argo, Path(tempfile.gettempdir()))
        with control_plane(args, argo) as (kubeconfig, logs, pids):
            table = asyncio.run(run(args, kubeconfig, logs, pids, argo))
    except BenchError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    end_load = os.getloadavg()
    s = args.sizes
    print(
        f"\nShoal vs Argo Workflows {argo_peer.ARGO_VERSION} on the test control plane "
        f"({time.monotonic() - started:.0f} s, scale {args.scale}: chain {s.chain}, fan-out "
        f"{s.items} at {s.parallelism}, {s.burst} one-node workflows)\n"
        f"load average (1/5/15 min) at start {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, "
        f"at end {end_load[0]:.1f}/{end_load[1]:.1f}/{end_load[2]:.1f} on {os.cpu_count()} CPUs\n"
    )
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
