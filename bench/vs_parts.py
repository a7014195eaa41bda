"""The pieces of bench/vs_argo.py that are not the comparison itself: what its watches
saw (pods and workflows of every engine's namespace), the API server's write counter,
the Shoal manifests of the workloads, bare Jobs, and the table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argo_peer import USER_IMAGE
from cluster_parts import BenchError

from shoal.kube.api import KubeApi

FINISHED = ("Succeeded", "Failed", "Error", "Stopped")
# The metric names HTTP verbs (POST creates, PUT updates), APPLY for server-side apply.
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION", "APPLY")
JOB_LABEL = "batch.kubernetes.io/job-name"


@dataclass
class PodSeen:
    workflow: str
    added: float
    terminated: float | None = None
    phase: str = "Pending"


@dataclass
class Seen:
    """Arrival times (perf_counter) of watch events, per namespace."""

    pods: dict[tuple[str, str], PodSeen] = field(default_factory=dict)
    live: dict[str, set[str]] = field(default_factory=dict)
    phases: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def pod_handler(self, label: str) -> Callable[[str, dict[str, Any], float], None]:
        """A handler for one namespace's pods; `label` names a pod's workflow (or Job)."""

        def on_pod(kind: str, pod: dict[str, Any], at: float) -> None:
            meta = pod["metadata"]
            ns, name = meta["namespace"], meta["name"]
            live = self.live.setdefault(ns, set())
            if kind == "DELETED":
                live.discard(name)
                return
            live.add(name)
            key = (ns, name)
            if key not in self.pods:
                owner = (meta.get("labels") or {}).get(label, "")
                self.pods[key] = PodSeen(owner, at)
            seen = self.pods[key]
            status = pod.get("status") or {}
            seen.phase = status.get("phase") or seen.phase
            states = [c.get("state") or {} for c in status.get("containerStatuses") or []]
            done = states and all("terminated" in s for s in states)
            if seen.terminated is None and (done or seen.phase in ("Succeeded", "Failed")):
                seen.terminated = at

        return on_pod

    def on_workflow(self, kind: str, wf: dict[str, Any], at: float) -> None:
        meta = wf["metadata"]
        key = (meta["namespace"], meta["name"])
        if kind == "DELETED":
            self.phases.pop(key, None)
            return
        phase = (wf.get("status") or {}).get("phase") or "Pending"
        if self.phases.get(key, ("", 0.0))[0] != phase:
            self.phases[key] = (phase, at)

    def pods_of(self, namespace: str, owner: str) -> list[PodSeen]:
        """The pods of one workflow (or Job), in the order they were first seen."""
        found = [p for (ns, _), p in self.pods.items() if ns == namespace and p.workflow == owner]
        return sorted(found, key=lambda p: p.added)

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


# -- the API server's own count of write requests ---------------------------------------

_REQUEST = re.compile(r"^apiserver_request_total\{([^}]*)\} (\S+)$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


async def api_writes(api: KubeApi) -> dict[str, float]:
    """Write requests served so far (every client), by resource, from /metrics."""
    return parse_writes(await api.text("/metrics"))


def parse_writes(text: str) -> dict[str, float]:
    """Sum apiserver_request_total over write verbs, by resource (reads are left out)."""
    out: dict[str, float] = {}
    for labels, value in _REQUEST.findall(text):
        parsed = dict(_LABEL.findall(labels))
        if parsed.get("verb") in WRITE_VERBS:
            resource = parsed.get("resource") or "-"
            out[resource] = out.get(resource, 0.0) + float(value)
    if not out:
        raise BenchError("the API server's /metrics has no apiserver_request_total writes")
    return out


async def writes_settled(api: KubeApi, within: float = 30) -> dict[str, float]:
    """The write counts once they stop moving for a second (late deletes, status)."""
    deadline = time.monotonic() + within
    last = await api_writes(api)
    while time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = await api_writes(api)
        if sum(now.values()) - sum(last.values()) <= 2:  # the node agent's lease beats
            return now
        last = now
    return last


def writes_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    return {k: v for k, v in delta.items() if v > 0}


# -- process figures -------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float:
    """CPU of a process's reaped children: for the node agent, the pods' containers."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- Shoal's manifests of the same workloads -------------------------------------------


def _shoal(name: str, nodes: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"image": USER_IMAGE, "nodes": nodes, **spec},
    }


def shoal_chain(name: str, length: int) -> dict[str, Any]:
    nodes = [
        {
            "name": f"n{i}",
            "command": ["echo", str(i)],
            **({"dependsOn": [f"n{i - 1}"]} if i else {}),
        }
        for i in range(length)
    ]
    return _shoal(name, nodes)


def shoal_fan_out(name: str, items: int, parallelism: int) -> dict[str, Any]:
    """A command node prints the list as an output message; `forEach` fans out over it."""
    message = json.dumps({"type": "output", "key": "items", "value": list(range(items))})
    listing = f"echo \"@shoal/2:$SHOAL_PROTOCOL_TOKEN \"'{message}'"
    nodes = [
        {"name": "list", "command": ["sh", "-c", listing]},
        {
            "name": "items",
            "dependsOn": ["list"],
            "forEach": "${{ nodes.list.outputs.items }}",
            "command": ["echo"],
            "args": ["${{ item }}"],
            "parallelism": parallelism,
        },
    ]
    return _shoal(name, nodes)


def shoal_single(name: str) -> dict[str, Any]:
    return _shoal(name, [{"name": "one", "command": ["echo", "1"]}])


def bare_job(name: str) -> dict[str, Any]:
    """The floor: one pod running the same command, through a Job, no engine at all."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"bench.shoal.dev/bare": "true"}},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": USER_IMAGE, "command": ["echo", "1"]}],
                }
            },
        },
    }


# -- the table -------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class Table:
    """Rows of figures: one value per engine, the floor beside them, ratios computed."""

    engines: list[str]
    rows: list[tuple[str, dict[str, float], float | None, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: str, values: dict[str, float], floor: float | None, unit: str) -> None:
        self.rows.append((figure, values, floor, unit))

    def print(self) -> None:
        argos = [e for e in self.engines if e != "shoal"]
        head = ["figure", *self.engines, *(f"shoal/{a}" for a in argos), "floor"]
        lines = [head]
        for figure, values, floor, unit in self.rows:
            cells = [figure]
            cells += [_fmt(values.get(e), unit) for e in self.engines]
            for a in argos:
                s, o = values.get("shoal"), values.get(a)
                cells.append(f"{s / o:.2f}" if s is not None and o else "-")
            cells.append(_fmt(floor, unit))
            lines.append(cells)
        widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
        for row in lines:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        for note in self.notes:
            print(f"  * {note}")


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value * 1000:.0f} ms"
    if unit == "s":
        return f"{value:.1f} s"
    if unit == "MiB":
        return f"{value / 1024:.0f} MiB"
    if unit == "KiB":
        return f"{value / 1024:.1f} KiB"
    return f"{value:.2f}"
