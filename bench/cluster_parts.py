"""The pieces of bench/cluster.py that are not the benchmark itself: what its watches
observe, the operator process, cluster set-up, the manifests it runs, and its figures
(percentiles, CPU per process, the report table).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from support import binaries  # noqa: E402
from support.procs import Server, free_port, log_tail  # noqa: E402

from shoal.api.workflow import Node, WorkflowSpec  # noqa: E402
from shoal.core.compiled import WorkflowMeta  # noqa: E402
from shoal.core.decisions import StartTask  # noqa: E402
from shoal.core.validation import compile_workflow  # noqa: E402
from shoal.kube.api import ApiError, KubeApi  # noqa: E402
from shoal.kube.jobs import JobDefaults, build_job  # noqa: E402
from shoal.kube.naming import LABEL_WORKFLOW_UID  # noqa: E402
from shoal_worker.protocol import new_token  # noqa: E402

IMAGE = "ghcr.io/shoal-dev/worker:0.1.0"
JOB = "shoal.echo"  # shoal.noop takes no arguments; echo returns its one small argument
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
BARE_LABEL = "bench.shoal.dev/bare"
CLK_TCK = os.sysconf("SC_CLK_TCK")


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
        return (await self.requests(client))["write"]

    async def requests(self, client: httpx.AsyncClient) -> dict[str, float]:
        """API requests so far: "all", "write", and one entry per "VERB route" (an
        operator without `shoal_api_requests_by_route` gives the first two only)."""
        self.server.check_alive()
        text = (await client.get(self.metrics_url, timeout=10)).text
        out: dict[str, float] = {}
        for kind in ("all", "write"):
            found = re.search(rf'^shoal_api_requests\{{kind="{kind}"\}} (\S+)$', text, re.M)
            if found is None:
                raise BenchError(f"the operator's /metrics has no shoal_api_requests{{{kind}}}")
            out[kind] = float(found.group(1))
        for route, value in ROUTE_LINE.findall(text):
            out[route] = float(value)
        return out


ROUTE_LINE = re.compile(r'^shoal_api_requests_by_route\{route="(.*)"\} (\S+)$', re.M)


def per_item_by_route(before: dict[str, float], after: dict[str, float], items: int) -> str:
    """'POST jobs 1.00, GET pods/{name}/log 1.00, ...': requests per item, most first."""
    routes = {k: (after[k] - before.get(k, 0.0)) / items for k in after if " " in k}
    shown = sorted((k for k, v in routes.items() if v > 0), key=lambda k: -routes[k])
    return ", ".join(f"{k} {routes[k]:.2f}" for k in shown) or "(no per-route metric)"


async def start_operator(
    kubeconfig: Path, namespace: str, logs: Path, log_level: str, profile: Path | None
) -> Operator:
    """Start `shoal operator` watching `namespace`; return once its /readyz answers.

    With `profile`, it runs under cProfile timed by CPU time (bench/cpu_profile.py), whose
    stats are written there when it stops."""
    port = free_port()
    venv = REPO / ".venv" / "bin"
    cpu_profile = str(REPO / "bench" / "cpu_profile.py")  # CPU time: load does not skew it
    profiler = [str(venv / "python"), cpu_profile, str(profile)] if profile else []
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


BENCH_POD_GC = {"strategy": "OnPodSuccess"}
"""Each Job goes once its pod succeeded, as the default does past its first 100 pods, so
a phase ends with an empty namespace (the next one's figures start clean) and each item's
cost includes its deletion. The default would keep the first 100 pods for `shoal logs`."""


def workflow(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"image": IMAGE, "podGC": BENCH_POD_GC, **spec},
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
    """The most pods observed running at once (running -> terminated)."""
    return _peak(seen.pod_running, seen.pod_terminated, jobs)


def peak_live_jobs(seen: Seen, jobs: list[str]) -> int:
    """The most Jobs that existed at once (observed added -> observed deleted): what a
    fan-out keeps in etcd, which must stay near its parallelism (issue 17, item 5)."""
    return _peak(seen.job_added, seen.job_deleted, jobs)


def _peak(starts: dict[str, float], ends: dict[str, float], jobs: list[str]) -> int:
    points = sorted(
        [(starts[j], 1) for j in jobs if j in starts] + [(ends[j], -1) for j in jobs if j in ends]
    )
    peak = current = 0
    for _, delta in points:
        current += delta
        peak = max(peak, current)
    return peak
