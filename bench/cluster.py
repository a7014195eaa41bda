"""The operator on a real control plane: latency between nodes and fan-out throughput.

Starts the test control plane (`tests/support`: real kube-apiserver, etcd,
controller-manager and scheduler, plus the node agent that runs pods as local
processes), applies `crds/`, starts `shoal operator` as a subprocess, and measures:

  bare Job   the same worker image and job (`shoal.echo` with one small argument),
             created directly with the API, from the create request to its pod observed
             Succeeded, one at a time, half before the chain and half after; the median
             is the floor of one Job per node.
  chain      N nodes, each depending on the previous one. Per edge: from the moment the
             pod watch observes the predecessor's pod terminated to the moment the Job
             watch observes the successor's Job (both watches run here, events
             timestamped on arrival; pod timestamps only have 1 s precision). And the
             chain's wall time against N x the bare Job.
  fan-out    one node over M items (`forEach` over a parameter, `itemArg`) with
             parallelism P: wall time against the naive floor M/P x bare Job and against
             the same M Jobs created directly by this script with P in flight (what this
             machine can do with no operator at all); the operator's CPU seconds (and
             per item: target <= 10 ms), its API writes per item
             (`shoal_api_requests{kind="write"}` delta), its peak RSS, and the Workflow
             object's size.

Figures are noisy on a 2-core machine, so ratios to same-run baselines come with the
absolute values. Every wait has a deadline; the operator and the control plane are
stopped on exit, Ctrl-C included.

    .venv/bin/python bench/cluster.py [--quick] [--kubeconfig K] [--chain 50] [--items 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from cluster_parts import (  # noqa: E402
    BenchError,
    Operator,
    Report,
    Seen,
    apply_crds,
    bare_job,
    chain_workflow,
    cpu_delta,
    cpu_snapshot,
    cpu_table,
    create_namespace,
    fan_out_deadline,
    fan_out_workflow,
    machine_cpu_seconds,
    ms,
    peak_live_jobs,
    peak_running,
    per_item_by_route,
    percentile,
    stage_medians,
    start_operator,
    watch,
)
from support.controlplane import ControlPlane  # noqa: E402
from support.procs import log_tail  # noqa: E402

from shoal.kube.api import KubeApi, jobs_path, pods_path, workflows_path  # noqa: E402
from shoal.kube.naming import LABEL_NODE  # noqa: E402

TARGET_EDGE_P50 = 0.100
TARGET_EDGE_P99 = 1.0
TARGET_CHAIN_RATIO = 1.3
TARGET_WRITES_PER_ITEM = 6.0
TARGET_OPERATOR_CPU_PER_ITEM = 0.010


# -- the benchmark -----------------------------------------------------------------------


@dataclass
class BareJobs:
    """Bare Jobs run one at a time (half before the chain, half after)."""

    names: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    """Create request sent -> pod observed Succeeded."""
    created: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    """Machine CPU seconds (all processes) while each ran."""
    components: dict[str, float] = field(default_factory=dict)
    """CPU seconds per process of this run, summed over all bare Jobs."""

    @property
    def median(self) -> float:
        return statistics.median(self.times)


@dataclass
class Chain:
    length: int
    jobs: list[str]
    edges: list[float]
    start: float
    end: float
    writes: float
    size: int
    cpu: float
    """Operator CPU seconds."""
    machine: float
    """Machine CPU seconds (all processes)."""
    components: dict[str, float]
    """CPU seconds per process of this run while the chain ran."""


@dataclass
class Bench:
    api: KubeApi
    namespace: str
    operator: Operator
    seen: Seen
    report: Report
    metrics: httpx.AsyncClient
    pids: dict[str, int]
    """Processes of this run by name, for CPU per component."""

    async def bare_jobs(self, count: int, bare: BareJobs) -> None:
        """Create `count` Jobs one after the other, each once the previous one succeeded."""
        for _ in range(count):
            name = f"bare-{len(bare.names)}-{uuid.uuid4().hex[:6]}"
            bare.names.append(name)
            machine = machine_cpu_seconds()
            before = cpu_snapshot(self.pids)
            start = time.perf_counter()
            manifest = bare_job(self.namespace, name, len(bare.names))
            await self.api.create(jobs_path(self.namespace), manifest)
            await self.seen.until(
                f"bare Job {name}'s pod to succeed", functools.partial(self._ended, name), 120
            )
            self._check_succeeded(name)
            for key, value in cpu_delta(before, cpu_snapshot(self.pids)).items():
                bare.components[key] = bare.components.get(key, 0.0) + value
            bare.cpu.append(machine_cpu_seconds() - machine)
            bare.times.append(self.seen.pod_succeeded[name] - start)
            bare.created.append(self.seen.job_added[name] - start)
        await self._delete_jobs(bare.names[-count:])

    def report_bare(self, bare: BareJobs) -> None:
        times, seen = bare.times, self.seen
        self.report.add(
            f"bare Job, create -> pod Succeeded (median of {len(times)})",
            f"{bare.median:.2f} s (min {min(times):.2f}, max {max(times):.2f})",
        )
        ends = [seen.pod_succeeded[j] - seen.pod_terminated[j] for j in bare.names]
        self.report.notes.append(
            f"bare Job: create->Job observed {ms(statistics.median(bare.created))}, "
            f"{stage_medians(seen, bare.names)}, terminated->Succeeded observed "
            f"{ms(statistics.median(ends))}; machine CPU {ms(statistics.median(bare.cpu))} per Job"
        )

    def _ended(self, job: str) -> bool:
        return job in self.seen.pod_succeeded or job in self.seen.pod_failed

    def _check_succeeded(self, job: str) -> None:
        if job in self.seen.pod_failed:
            raise BenchError(f"pod of Job {job} failed: {self.seen.pod_failed[job]}")

    async def _delete_jobs(self, names: list[str]) -> None:
        sem = asyncio.Semaphore(20)

        async def one(name: str) -> None:
            async with sem:
                await self.api.delete(jobs_path(self.namespace, name))

        await asyncio.gather(*(one(n) for n in names))
        await self.idle(f"{len(names)} deleted Jobs' pods to go", 180)

    async def idle(self, what: str, within: float) -> None:
        """Wait until no pod is left in the namespace (phases do not overlap)."""
        await self.seen.until(what, lambda: not self.seen.pods_live, within)

    async def run_workflow(
        self, manifest: dict[str, Any], within: float
    ) -> tuple[str, float, float]:
        """Create a Workflow, wait for it to succeed; its uid, when the create request was
        sent and when Succeeded was observed."""
        name = manifest["metadata"]["name"]
        start = time.perf_counter()
        created = await self.api.create(workflows_path(self.namespace), manifest)
        assert created is not None
        uid = str(created["metadata"]["uid"])

        def finished() -> bool:
            phase = self.seen.workflow_phase.get(name, ("Pending", 0.0))[0]
            return phase in ("Succeeded", "Failed", "Error", "Stopped")

        try:
            await self.seen.until(f"Workflow {name} to finish", finished, within)
        except BenchError as err:
            status = (self.seen.workflow_last.get(name) or {}).get("status") or {}
            raise BenchError(
                f"{err}; last status seen: {json.dumps(status)[:2000]}\n"
                f"operator log ({self.operator.server.log}):\n{log_tail(self.operator.server.log)}"
            ) from None
        phase, at = self.seen.workflow_phase[name]
        if phase != "Succeeded":
            status = self.seen.workflow_last[name].get("status") or {}
            raise BenchError(f"Workflow {name} ended {phase}: {status.get('message')}")
        return uid, start, at

    async def settle(self, uid: str, within: float) -> None:
        """After a workflow succeeded: its Jobs deleted, pods gone, write count steady."""
        await self.seen.until(
            "the operator to delete the finished workflow's Jobs",
            lambda: all(j in self.seen.job_deleted for j in self.seen.jobs_of(uid)),
            within,
        )
        await self.idle("the workflow's pods to go", within)
        deadline = time.monotonic() + 30
        last = await self.operator.writes(self.metrics)
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            now = await self.operator.writes(self.metrics)
            if now == last:
                return
            last = now
        raise BenchError("the operator kept writing for 30s after its workflow ended")

    async def delete_workflow(self, name: str) -> None:
        """Delete while the operator runs, so its finalizer is removed and nothing is left."""
        await self.api.delete(workflows_path(self.namespace, name))
        await self.seen.until(
            f"Workflow {name} to be deleted", lambda: name in self.seen.workflow_deleted, 60
        )

    async def workflow_size(self, name: str) -> int:
        obj = await self.api.get(workflows_path(self.namespace, name))
        return len(json.dumps(obj))

    async def chain(self, length: int) -> Chain:
        """Run the chain; figures are reported once the bare Jobs after it are measured too."""
        name = f"chain-{uuid.uuid4().hex[:6]}"
        writes_before = await self.operator.writes(self.metrics)
        cpu_before, machine_before = self.operator.cpu_seconds(), machine_cpu_seconds()
        components = cpu_snapshot(self.pids)
        uid, start, end = await self.run_workflow(chain_workflow(name, length), 60 + 15 * length)
        cpu = self.operator.cpu_seconds() - cpu_before
        machine = machine_cpu_seconds() - machine_before
        components = cpu_delta(components, cpu_snapshot(self.pids))
        size = await self.workflow_size(name)
        by_node = {lb.get(LABEL_NODE, ""): j for j, lb in self.seen.jobs_of(uid).items()}
        missing = [f"n{i}" for i in range(length) if f"n{i}" not in by_node]
        if missing:
            raise BenchError(f"no Job observed for chain node(s) {', '.join(missing)}")
        jobs = [by_node[f"n{i}"] for i in range(length)]
        edges = [
            self.seen.job_added[after] - self.seen.pod_terminated[before]
            for before, after in itertools.pairwise(jobs)
        ]
        await self.settle(uid, 120)
        writes = await self.operator.writes(self.metrics) - writes_before
        await self.delete_workflow(name)
        return Chain(length, jobs, edges, start, end, writes, size, cpu, machine, components)

    def report_chain(self, c: Chain, bare: BareJobs) -> None:
        wall, n, seen = c.end - c.start, c.length, self.seen
        p50, p99 = percentile(c.edges, 50), percentile(c.edges, 99)
        ratio = wall / (n * bare.median)
        r = self.report
        r.add(f"chain {n}: edge latency p50 ({len(c.edges)} edges)", ms(p50), "<= 100 ms",
              p50 <= TARGET_EDGE_P50)  # fmt: skip
        r.add(f"chain {n}: edge latency p99", ms(p99), "<= 1000 ms", p99 <= TARGET_EDGE_P99)
        r.add(f"chain {n}: edge latency max", ms(max(c.edges)))
        r.add(f"chain {n}: wall time", f"{wall:.1f} s")
        r.add(f"chain {n}: wall / ({n} x bare Job)", f"{ratio:.2f}", "<= 1.3",
              ratio <= TARGET_CHAIN_RATIO)  # fmt: skip
        r.add(f"chain {n}: machine CPU per node / per bare Job",
              f"{c.machine / n / statistics.median(bare.cpu):.2f}")  # fmt: skip
        r.add(f"chain {n}: operator CPU per node", ms(c.cpu / n))
        r.add(f"chain {n}: API writes per node", f"{c.writes / n:.2f}")
        r.add(f"chain {n}: Workflow object size", f"{c.size} B")
        jobs = c.jobs

        def total(a: dict[str, float], b: dict[str, float]) -> str:
            return f"{sum(b[j] - a[j] for j in jobs):.2f}"

        r.notes.append(f"chain Job stages: {stage_medians(seen, jobs)}")
        if len(c.components) > 2:
            per_node = {k: v / n for k, v in c.components.items()}
            per_bare = {k: v / len(bare.times) for k, v in bare.components.items()}
            r.notes.append("CPU ms per chain node / per bare Job: " + cpu_table(per_node, per_bare))
        r.notes.append(
            f"chain wall {wall:.2f} s = create->first Job "
            f"{seen.job_added[jobs[0]] - c.start:.2f} + sums of Job->pod "
            f"{total(seen.job_added, seen.pod_added)}, pod->running "
            f"{total(seen.pod_added, seen.pod_running)}, running->terminated "
            f"{total(seen.pod_running, seen.pod_terminated)}, edges {sum(c.edges):.2f} + last "
            f"pod terminated->Succeeded {c.end - seen.pod_terminated[jobs[-1]]:.2f}"
        )

    async def bare_fan_out(
        self, items: int, parallelism: int, within: float
    ) -> tuple[float, dict[str, float]]:
        """The same `items` Jobs created directly, `parallelism` in flight: no operator.
        Its wall time, and CPU seconds per process of this run until the last pod ended."""
        run = uuid.uuid4().hex[:6]
        names = [f"fan-{run}-{k}" for k in range(items)]
        components = cpu_snapshot(self.pids)
        start = time.perf_counter()
        deadline = time.monotonic() + within
        next_index = 0
        in_flight: set[str] = set()
        sem = asyncio.Semaphore(32)  # like the operator's --max-concurrent-requests

        async def create(k: int) -> None:
            async with sem:
                manifest = bare_job(self.namespace, names[k], k)
                await self.api.create(jobs_path(self.namespace), manifest)

        creating: set[asyncio.Task[None]] = set()
        while next_index < items or in_flight:
            for job in [j for j in in_flight if self._ended(j)]:
                self._check_succeeded(job)
                in_flight.discard(job)
            while next_index < items and len(in_flight) < parallelism:
                in_flight.add(names[next_index])
                task = asyncio.create_task(create(next_index))
                creating.add(task)
                task.add_done_callback(creating.discard)
                next_index += 1
            if not in_flight and next_index >= items:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(
                    f"bare fan-out: {next_index - len(in_flight)} of {items} Jobs done after "
                    f"{within:.0f}s"
                )
            self.seen.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.seen.changed.wait(), min(remaining, 1.0))
        wall = max(self.seen.pod_succeeded[n] for n in names) - start
        components = cpu_delta(components, cpu_snapshot(self.pids))
        peak = peak_running(self.seen, names)
        self.report.notes.append(
            f"baseline fan-out: peak {peak} pods running at once; Job stages: "
            + stage_medians(self.seen, names)
        )
        await self._delete_jobs(names)
        return wall, components

    async def fan_out(
        self,
        items: int,
        parallelism: int,
        bare: float,
        bare_fan: tuple[float, dict[str, float]] | None,
    ) -> None:
        name = f"fan-out-{uuid.uuid4().hex[:6]}"
        requests_before = await self.operator.requests(self.metrics)
        cpu_before = self.operator.cpu_seconds()
        machine_before = machine_cpu_seconds()
        rss_start = self.operator.status_kib("VmRSS")
        rss_peak = 0

        async def sample_rss() -> None:
            nonlocal rss_peak
            while True:
                rss_peak = max(rss_peak, self.operator.status_kib("VmRSS"))
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample_rss())
        components = cpu_snapshot(self.pids)
        try:
            floor = items / parallelism * bare
            uid, start, end = await self.run_workflow(
                fan_out_workflow(name, items, parallelism), fan_out_deadline(items, floor)
            )
            components = cpu_delta(components, cpu_snapshot(self.pids))
            wall = end - start
            size = await self.workflow_size(name)
            await self.settle(uid, 300)
        finally:
            sampler.cancel()
        cpu = self.operator.cpu_seconds() - cpu_before
        machine = machine_cpu_seconds() - machine_before
        requests = await self.operator.requests(self.metrics)
        writes = requests["write"] - requests_before["write"]
        hwm = self.operator.status_kib("VmHWM")
        jobs = list(self.seen.jobs_of(uid))
        if len(jobs) != items:
            raise BenchError(f"fan-out: {len(jobs)} Jobs observed for {items} items")
        peak = peak_running(self.seen, jobs)

        r = self.report
        label = f"fan-out {items} (par {parallelism})"
        r.add(f"{label}: wall time", f"{wall:.1f} s")
        r.add(f"{label}: wall / ({items}/{parallelism} x bare Job = {floor:.1f} s)",
              f"{wall / floor:.2f}")  # fmt: skip
        per_item = {k: v / items for k, v in components.items()}
        if bare_fan is not None:
            bare_wall, bare_components = bare_fan
            r.add(f"{label}: wall / same Jobs created directly ({bare_wall:.1f} s)",
                  f"{wall / bare_wall:.2f}")  # fmt: skip
            per_bare = {k: v / items for k, v in bare_components.items()}
            r.notes.append(
                "CPU ms per item, fan-out / same Jobs created directly: "
                + cpu_table(per_item, per_bare)
            )
        else:
            r.notes.append("CPU ms per item, fan-out: " + cpu_table(per_item, None))
        r.add(f"{label}: peak pods running at once (observed)", str(peak), f"{parallelism}")
        live = peak_live_jobs(self.seen, jobs)
        r.add(f"{label}: peak Jobs live at once (observed)", str(live),
              f"<= {2 * parallelism}", live <= 2 * parallelism)  # fmt: skip
        r.add(f"{label}: API writes per item", f"{writes / items:.2f}", "<= 6",
              writes / items <= TARGET_WRITES_PER_ITEM)  # fmt: skip
        all_requests = (requests["all"] - requests_before["all"]) / items
        r.add(f"{label}: API requests per item (reads, watches, log streams too)",
              f"{all_requests:.2f}")  # fmt: skip
        r.notes.append(
            "API requests per item by verb and route: "
            + per_item_by_route(requests_before, requests, items)
        )
        r.add(f"{label}: operator CPU", f"{cpu:.1f} s")
        r.add(f"{label}: operator CPU per item", f"{cpu / items * 1000:.1f} ms", "<= 10 ms",
              cpu / items <= TARGET_OPERATOR_CPU_PER_ITEM)  # fmt: skip
        r.add(f"{label}: operator CPU / machine CPU", f"{cpu / machine:.1%} of {machine:.0f} s")
        rss = f"{rss_start / 1024:.0f} -> {rss_peak / 1024:.0f} ({hwm / 1024:.0f}) MiB"
        r.add(f"{label}: operator RSS at start -> peak sampled (VmHWM)", rss)
        r.add(f"{label}: Workflow object size", f"{size} B")
        r.notes.append(f"fan-out Job stages: {stage_medians(self.seen, jobs)}")
        await self.delete_workflow(name)


async def run(
    args: argparse.Namespace, kubeconfig: Path, logs: Path, pids: dict[str, int]
) -> Report:
    api = KubeApi.connect(str(kubeconfig))
    metrics = httpx.AsyncClient()
    report = Report()
    namespace = f"shoal-bench-{uuid.uuid4().hex[:6]}"
    watchers: list[asyncio.Task[None]] = []
    operator: Operator | None = None
    try:
        await create_namespace(api, namespace)
        seen = Seen()
        for path, handler in (
            (jobs_path(namespace), seen.on_job),
            (pods_path(namespace), seen.on_pod),
            (workflows_path(namespace), seen.on_workflow),
        ):
            started = asyncio.Event()
            watchers.append(asyncio.create_task(watch(api, path, handler, seen, started)))
            await asyncio.wait_for(started.wait(), 30)
        operator = await start_operator(
            kubeconfig, namespace, logs, args.operator_log_level, args.profile_operator
        )
        pids = {**pids, "operator": operator.pid, "benchmark": os.getpid()}
        bench = Bench(api, namespace, operator, seen, report, metrics, pids)
        print(f"namespace {namespace}; operator pid {operator.pid}, log {operator.server.log}")

        bare = BareJobs()
        print(f"bare Jobs x{args.bare // 2} ...", flush=True)
        await bench.bare_jobs(args.bare // 2, bare)
        print(f"chain of {args.chain} ...", flush=True)
        chain = await bench.chain(args.chain)
        print(f"bare Jobs x{args.bare - args.bare // 2} ...", flush=True)
        await bench.bare_jobs(args.bare - args.bare // 2, bare)
        bench.report_bare(bare)
        bench.report_chain(chain, bare)
        if args.no_fan_out:
            return report
        bare_fan = None
        if not args.no_bare_fan_out:
            print(f"{args.items} Jobs created directly, {args.parallelism} at once ...", flush=True)
            floor = args.items / args.parallelism * bare.median
            within = fan_out_deadline(args.items, floor)
            bare_fan = await bench.bare_fan_out(args.items, args.parallelism, within)
            report.add(
                f"baseline: {args.items} bare Jobs, {args.parallelism} in flight (no operator)",
                f"{bare_fan[0]:.1f} s",
            )
        print(f"fan-out of {args.items}, parallelism {args.parallelism} ...", flush=True)
        await bench.fan_out(args.items, args.parallelism, bare.median, bare_fan)
        report.notes.append(
            "API writes are the operator's own requests (KubeApi.writes: Job creates and "
            "deletes, status patches, retries included); kopf's few per-workflow writes "
            "(finalizer, events) are not counted"
        )
        return report
    finally:
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        with contextlib.suppress(Exception):
            if args.kubeconfig is not None:  # a shared cluster: leave nothing behind
                await api.delete(f"/api/v1/namespaces/{namespace}")
        if operator is not None:
            await asyncio.to_thread(operator.server.stop, 15)
        await metrics.aclose()
        await api.close()


@contextlib.contextmanager
def control_plane(args: argparse.Namespace) -> Iterator[tuple[Path, Path, dict[str, int]]]:
    """The kubeconfig to use, a directory for logs and the pids of the control plane's
    processes (none for --kubeconfig); stops what it started."""
    root = Path(tempfile.mkdtemp(prefix="shoal-bench-"))
    ok = False
    plane: ControlPlane | None = None
    try:
        if args.kubeconfig is not None:
            kubeconfig = Path(args.kubeconfig).resolve()
        else:
            print(f"starting the test control plane in {root} ...", flush=True)
            plane = ControlPlane(root / "cluster")
            plane.start()
            kubeconfig = plane.kubeconfig
        apply_crds(kubeconfig)
        pids = {} if plane is None else {server.name: server.pid for server in plane.servers}
        yield kubeconfig, root / "logs", pids
        ok = True
    finally:
        if plane is not None:
            plane.stop()
        if ok:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"logs kept in {root}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke sizes: chain 10, fan-out 100")
    parser.add_argument("--kubeconfig", help="use this running cluster instead of starting one")
    parser.add_argument("--chain", type=int, help="chain length (default 50, quick 10)")
    parser.add_argument("--items", type=int, help="fan-out items (default 1000, quick 100)")
    parser.add_argument("--parallelism", type=int, default=50)
    parser.add_argument(
        "--bare", type=int, default=10, help="bare Jobs for the median (half before the chain)"
    )
    parser.add_argument(
        "--no-bare-fan-out",
        action="store_true",
        help="skip the baseline of the fan-out's Jobs created directly",
    )
    parser.add_argument("--no-fan-out", action="store_true", help="bare Jobs and chain only")
    parser.add_argument("--operator-log-level", default="INFO")
    parser.add_argument(
        "--profile-operator",
        type=Path,
        metavar="FILE",
        help="run the operator under cProfile, timed by CPU time, and write its stats to FILE "
        "(inflates its CPU)",
    )
    args = parser.parse_args()
    args.chain = args.chain or (10 if args.quick else 50)
    args.items = args.items or (100 if args.quick else 1000)

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    started = time.monotonic()
    try:
        with control_plane(args) as (kubeconfig, logs, pids):
            report = asyncio.run(run(args, kubeconfig, logs, pids))
    except BenchError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print(f"\nShoal operator on the test control plane ({time.monotonic() - started:.0f} s)\n")
    report.print()
    return 0 if all(row.verdict != "MISS" for row in report.rows) else 2


if __name__ == "__main__":
    raise SystemExit(main())
