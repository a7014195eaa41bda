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
             machine can do with no operator at all); the operator's CPU seconds, its
             API writes per item (`shoal_api_requests{kind="write"}` delta), its peak
             RSS, and the Workflow object's size.

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
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import binaries  # noqa: E402
from support.controlplane import ControlPlane  # noqa: E402
from support.procs import Server, free_port, log_tail  # noqa: E402

from shoal.api.workflow import Node, WorkflowSpec  # noqa: E402
from shoal.core.compiled import WorkflowMeta  # noqa: E402
from shoal.core.decisions import StartTask  # noqa: E402
from shoal.core.validation import compile_workflow  # noqa: E402
from shoal.kube.api import ApiError, KubeApi, jobs_path, pods_path, workflows_path  # noqa: E402
from shoal.kube.jobs import JobDefaults, build_job  # noqa: E402
from shoal.kube.naming import LABEL_NODE, LABEL_WORKFLOW_UID  # noqa: E402
from shoal_worker.protocol import new_token  # noqa: E402

IMAGE = "ghcr.io/shoal-dev/worker:0.1.0"
JOB = "shoal.echo"  # shoal.noop takes no arguments; echo returns its one small argument
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
BARE_LABEL = "bench.shoal.dev/bare"
CLK_TCK = os.sysconf("SC_CLK_TCK")

TARGET_EDGE_P50 = 0.100
TARGET_EDGE_P99 = 1.0
TARGET_CHAIN_RATIO = 1.3
TARGET_WRITES_PER_ITEM = 6.0


class BenchError(RuntimeError):
    """A wait passed its deadline or a run ended badly; the message says which and why."""


# -- what the watches observed ---------------------------------------------------------


@dataclass
class Seen:
    """Arrival times (perf_counter) of what the watches reported, keyed by Job name."""

    job_added: dict[str, float] = field(default_factory=dict)
    job_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    job_deleted: dict[str, float] = field(default_factory=dict)
    pod_added: dict[str, float] = field(default_factory=dict)
    pod_running: dict[str, float] = field(default_factory=dict)
    pod_terminated: dict[str, float] = field(default_factory=dict)
    pod_succeeded: dict[str, float] = field(default_factory=dict)
    pod_failed: dict[str, str] = field(default_factory=dict)
    pods_live: set[str] = field(default_factory=set)
    workflow_phase: dict[str, tuple[str, float]] = field(default_factory=dict)
    workflow_last: dict[str, dict[str, Any]] = field(default_factory=dict)
    workflow_deleted: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_job(self, kind: str, job: dict[str, Any], at: float) -> None:
        meta = job["metadata"]
        name = meta["name"]
        if kind == "DELETED":
            self.job_deleted.setdefault(name, at)
        else:
            self.job_added.setdefault(name, at)
            self.job_labels.setdefault(name, meta.get("labels") or {})

    def on_pod(self, kind: str, pod: dict[str, Any], at: float) -> None:
        meta = pod["metadata"]
        job = (meta.get("labels") or {}).get(JOB_NAME_LABEL)
        if job is None:
            return
        if kind == "DELETED":
            self.pods_live.discard(meta["name"])
            return
        self.pods_live.add(meta["name"])
        self.pod_added.setdefault(job, at)
        status = pod.get("status") or {}
        phase = status.get("phase")
        containers = status.get("containerStatuses") or []
        state = (containers[0].get("state") or {}) if containers else {}
        if "running" in state or phase == "Running":
            self.pod_running.setdefault(job, at)
        if "terminated" in state or phase in ("Succeeded", "Failed"):
            self.pod_running.setdefault(job, at)
            self.pod_terminated.setdefault(job, at)
        if phase == "Succeeded":
            self.pod_succeeded.setdefault(job, at)
        elif phase == "Failed":
            terminated = state.get("terminated") or {}
            why = terminated.get("message") or status.get("message") or status.get("reason")
            self.pod_failed.setdefault(job, str(why or "no message"))

    def on_workflow(self, kind: str, wf: dict[str, Any], at: float) -> None:
        name = wf["metadata"]["name"]
        if kind == "DELETED":
            self.workflow_deleted.add(name)
            return
        self.workflow_last[name] = wf
        phase = (wf.get("status") or {}).get("phase", "Pending")
        if self.workflow_phase.get(name, ("", 0.0))[0] != phase:
            self.workflow_phase[name] = (phase, at)

    def jobs_of(self, uid: str) -> dict[str, dict[str, str]]:
        return {n: lb for n, lb in self.job_labels.items() if lb.get(LABEL_WORKFLOW_UID) == uid}

    async def until(self, what: str, check: Callable[[], bool], within: float) -> None:
        """Wait, woken by watch events, until `check()`; BenchError after `within`."""
        deadline = time.monotonic() + within
        while not check():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"timed out after {within:.0f}s waiting for {what}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(remaining, 1.0))


async def watch(
    api: KubeApi,
    path: str,
    handler: Callable[[str, dict[str, Any], float], None],
    seen: Seen,
    started: asyncio.Event,
) -> None:
    """List then watch `path` forever, timestamping each event on arrival."""
    listing = await api.get(path)
    now = time.perf_counter()
    for item in listing.get("items") or []:
        handler("ADDED", item, now)
    version = listing["metadata"]["resourceVersion"]
    started.set()
    while True:
        try:
            async for line in api.lines(
                path,
                watch="true",
                resourceVersion=version,
                allowWatchBookmarks="true",
                timeoutSeconds=240,
            ):
                at = time.perf_counter()
                if not line:
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":  # 410 Gone: start over from a fresh list
                    listing = await api.get(path)
                    version = listing["metadata"]["resourceVersion"]
                    for item in listing.get("items") or []:
                        handler("MODIFIED", item, time.perf_counter())
                    break
                version = obj["metadata"]["resourceVersion"]
                if event.get("type") != "BOOKMARK":
                    handler(str(event["type"]), obj, at)
                    seen.changed.set()
        except (ApiError, httpx.HTTPError):
            await asyncio.sleep(0.2)


# -- the operator process --------------------------------------------------------------


@dataclass
class Operator:
    server: Server
    metrics_url: str

    @property
    def pid(self) -> int:
        return self.server.pid

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise BenchError(f"no {key} in /proc/{self.pid}/status")

    async def writes(self, client: httpx.AsyncClient) -> float:
        self.server.check_alive()
        text = (await client.get(self.metrics_url, timeout=10)).text
        found = re.search(r'^shoal_api_requests\{kind="write"\} (\S+)$', text, re.M)
        if found is None:
            raise BenchError('the operator\'s /metrics has no shoal_api_requests{kind="write"}')
        return float(found.group(1))


async def start_operator(
    kubeconfig: Path, namespace: str, logs: Path, log_level: str, profile: Path | None
) -> Operator:
    """Start `shoal operator` watching `namespace`; return once its /readyz answers.

    With `profile`, it runs under cProfile, whose stats are written there when it stops."""
    port = free_port()
    venv = REPO / ".venv" / "bin"
    profiler = [str(venv / "python"), "-m", "cProfile", "-o", str(profile)] if profile else []
    argv = [
        *profiler,
        str(venv / "shoal"),
        "operator",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        namespace,
        "--metrics-port",
        str(port),
        "--no-restricted",
        "--worker-image",
        IMAGE,
        "--log-level",
        log_level,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOAL_")}
    # Started from the main thread: the child's parent-death signal follows the thread
    # that forked it, so the operator dies with this script even on SIGKILL.
    server = Server("shoal-operator", argv, logs / "operator.log", env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while True:
            server.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/readyz", timeout=2)).status_code == 200:
                    return Operator(server, f"{base}/metrics")
            if time.monotonic() > deadline:
                server.stop()
                raise BenchError(
                    f"the operator was not ready within 60s; last lines of {server.log}:\n"
                    + log_tail(server.log)
                )
            await asyncio.sleep(0.1)  # nothing to watch until it serves


# -- cluster set-up ----------------------------------------------------------------------


def kubectl(kubeconfig: Path, *args: str, timeout: float = 90) -> None:
    argv = [str(binaries.kubectl_bin()), f"--kubeconfig={kubeconfig}", *args]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise BenchError(f"kubectl {' '.join(args)} took longer than {timeout:.0f}s") from err
    if proc.returncode != 0:
        raise BenchError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")


def apply_crds(kubeconfig: Path) -> None:
    crds = str(REPO / "crds")
    kubectl(kubeconfig, "apply", "-f", crds)
    kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", "-f", crds)


async def create_namespace(api: KubeApi, name: str) -> None:
    await api.create("/api/v1/namespaces", {"metadata": {"name": name}})
    deadline = time.monotonic() + 60
    while True:  # nothing to watch before the namespace exists; a short bounded poll
        with contextlib.suppress(ApiError):
            await api.get(f"/api/v1/namespaces/{name}/serviceaccounts/default")
            return
        if time.monotonic() > deadline:
            raise BenchError(f"namespace {name} got no default ServiceAccount within 60s")
        await asyncio.sleep(0.1)


# -- manifests ---------------------------------------------------------------------------


def bare_job(namespace: str, name: str, index: int) -> dict[str, Any]:
    """A Job as the operator would build it for one `shoal.echo` node, without the operator:
    same image, command, args file and pod settings; bench labels, no owner."""
    spec = WorkflowSpec(nodes=[Node(name="bare", job=JOB, args={"i": index})])
    wf = compile_workflow(spec, WorkflowMeta(name="bare", namespace=namespace, uid="bare"))
    task = StartTask(node="bare", index=0, attempt=1, args={"i": index})
    manifest = build_job(wf, task, JobDefaults(image=IMAGE, restricted=False), token=new_token())
    labels = {BARE_LABEL: "true"}
    manifest["metadata"] = {"name": name, "namespace": namespace, "labels": labels}
    manifest["spec"]["template"]["metadata"]["labels"] = labels
    return manifest


def workflow(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"image": IMAGE, **spec},
    }


def chain_workflow(name: str, length: int) -> dict[str, Any]:
    nodes = [
        {
            "name": f"n{i}",
            "job": JOB,
            "args": {"i": i},
            **({"dependsOn": [f"n{i - 1}"]} if i else {}),
        }
        for i in range(length)
    ]
    return workflow(name, {"nodes": nodes})


def fan_out_workflow(name: str, items: int, parallelism: int) -> dict[str, Any]:
    node = {
        "name": "items",
        "job": JOB,
        "forEach": "${{ params.items }}",
        "itemArg": "i",
        "parallelism": parallelism,
    }
    return workflow(name, {"parameters": {"items": list(range(items))}, "nodes": [node]})


# -- statistics and the table ----------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p99 of 49 samples is the largest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


@dataclass
class Row:
    figure: str
    value: str
    target: str = "-"
    verdict: str = "info"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: str, value: str, target: str = "-", ok: bool | None = None) -> None:
        verdict = "info" if ok is None else ("PASS" if ok else "MISS")
        self.rows.append(Row(figure, value, target, verdict))

    def print(self) -> None:
        widths = [max(len(getattr(r, f)) for r in [*self.rows, HEADER]) for f in FIELDS]
        for row in [HEADER, *self.rows]:
            print("  ".join(getattr(row, f).ljust(w) for f, w in zip(FIELDS, widths, strict=True)))
        for note in self.notes:
            print(f"  * {note}")


HEADER = Row("figure", "value", "target", "verdict")
FIELDS = ("figure", "value", "target", "verdict")


def stage_medians(seen: Seen, jobs: list[str]) -> str:
    """Where one Job's time goes: Job->pod, pod->running, running->terminated."""

    def stage(a: dict[str, float], b: dict[str, float]) -> str:
        spans = [b[j] - a[j] for j in jobs if j in a and j in b]
        return f"{ms(statistics.median(spans))} (mean {ms(statistics.mean(spans))})"

    return (
        f"Job->pod {stage(seen.job_added, seen.pod_added)}, "
        f"pod->running {stage(seen.pod_added, seen.pod_running)}, "
        f"running->terminated {stage(seen.pod_running, seen.pod_terminated)}"
    )


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
        writes_before = await self.operator.writes(self.metrics)
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
        writes = await self.operator.writes(self.metrics) - writes_before
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
        r.add(f"{label}: API writes per item", f"{writes / items:.2f}", "<= 6",
              writes / items <= TARGET_WRITES_PER_ITEM)  # fmt: skip
        r.add(f"{label}: operator CPU", f"{cpu:.1f} s ({cpu / items * 1000:.1f} ms per item)")
        r.add(f"{label}: operator CPU / machine CPU", f"{cpu / machine:.1%} of {machine:.0f} s")
        rss = f"{rss_start / 1024:.0f} -> {rss_peak / 1024:.0f} ({hwm / 1024:.0f}) MiB"
        r.add(f"{label}: operator RSS at start -> peak sampled (VmHWM)", rss)
        r.add(f"{label}: Workflow object size", f"{size} B")
        r.notes.append(f"fan-out Job stages: {stage_medians(self.seen, jobs)}")
        await self.delete_workflow(name)


def fan_out_deadline(items: int, floor: float) -> float:
    """Generous, so only a hang trips it: a 2-core machine runs ~5-10 pods a second, far
    below what `parallelism` times the bare Job's rate would give."""
    return 300 + max(20 * floor, 1.0 * items)


def process_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of a process: its own, and its reaped children's."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    own = int(fields[11]) + int(fields[12])
    children = int(fields[13]) + int(fields[14])
    return own / CLK_TCK, children / CLK_TCK


PODS = "pods"
OTHER = "other (not this run)"


def cpu_snapshot(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far per process of this run; the node agent's children are the pods."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            own, children = process_cpu(pid)
            out[name] = own
            if name == "nodeagent":
                out[PODS] = children
    out[OTHER] = machine_cpu_seconds() - sum(out.values())
    return out


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0.0) for k in after}


def cpu_table(per_node: dict[str, float], per_bare: dict[str, float] | None) -> str:
    """'name ours/bare' in ms per node or item, the busiest first."""
    names = sorted(per_node, key=lambda k: -per_node[k])
    bare = per_bare or {}
    return ", ".join(
        f"{k} {per_node[k] * 1000:.0f}" + (f"/{bare.get(k, 0.0) * 1000:.0f}" if bare else "")
        for k in names
    )


def machine_cpu_seconds() -> float:
    """CPU time the whole machine spent busy (all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def peak_running(seen: Seen, jobs: list[str]) -> int:
    points = sorted(
        [(seen.pod_running[j], 1) for j in jobs if j in seen.pod_running]
        + [(seen.pod_terminated[j], -1) for j in jobs if j in seen.pod_terminated]
    )
    peak = current = 0
    for _, delta in points:
        current += delta
        peak = max(peak, current)
    return peak


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
        help="run the operator under cProfile and write its stats to FILE (inflates its CPU)",
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
