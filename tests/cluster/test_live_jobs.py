"""Bounded live Jobs for big fan-outs, on the real control plane (kube/item_jobs.py).

What a user relies on: a fan-out of any size keeps about its parallelism in Jobs, not one
per item, and still ends with every item's output; an operator killed mid-fan-out, after
some items' Jobs were deleted, loses none of those items and runs none of them again.
Jobs are counted through a watch (every ADDED and DELETED event), never by sleeping and
listing. Each test runs its own operator (the `test_own_operator` namespaces are not the
session operator's).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import OperatorProcess, create_workflow, start_operator, wait_workflow

pytestmark = pytest.mark.cluster

EMIT = (
    'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN '
    '{\\"type\\":\\"output\\",\\"key\\":\\"v\\",\\"value\\":$((SHOAL_ITEM_INDEX * 2))}"'
)


def fan_out(
    name: str, items: int, parallelism: int, marks: Path | None = None, *, emit: bool = True
) -> dict[str, Any]:
    """`items` items that each emit `v = 2 * index` (unless not `emit`: 10,000 values would
    not fit the status) and append their index to `marks`, with podGC OnPodSuccess: every
    succeeded item's Job may go as soon as a status write records it."""
    script = (f'echo "$SHOAL_ITEM_INDEX" >> "{marks}"; ' if marks else "") + (
        EMIT if emit else "true"
    )
    node = {
        "name": "fan",
        "withSequence": {"count": items},
        "parallelism": parallelism,
        "command": ["sh", "-c", script],
    }
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"nodes": [node], "podGC": {"strategy": "OnPodSuccess"}},
    }


class JobCounter:
    """Follows the namespace's Jobs through one watch (resumed from its resourceVersion),
    keeping the live count, its peak, and the Jobs created per item index (by uid: a
    re-created Job has the same name but a new uid)."""

    def __init__(self, k8s_api: Any, namespace: str) -> None:
        from kubernetes import client, watch

        self.batch = client.BatchV1Api(k8s_api)
        self.namespace = namespace
        self.live: set[str] = set()
        self.peak = 0
        self.deleted = 0
        self.created: dict[int, set[str]] = {}
        self.cond = threading.Condition()
        self.watch = watch.Watch()
        self.closed = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self) -> None:
        """The watch, resumed from the last resourceVersion it saw when the connection
        drops (so no event is missed), until `close`."""
        while not self.closed.is_set():
            try:
                for event in self.watch.stream(
                    self.batch.list_namespaced_job,
                    self.namespace,
                    resource_version=self.watch.resource_version,
                ):
                    self._see(event["type"], event["object"])
            except Exception as err:  # a dropped connection: resume, unless closing
                if self.closed.is_set():
                    return
                self.errors.append(repr(err))
                if len(self.errors) > 20:
                    raise

    def _see(self, kind: str, job: Any) -> None:
        labels = job.metadata.labels or {}
        with self.cond:
            if kind == "ADDED":
                self.live.add(job.metadata.uid)
                index = int(labels.get("shoal.dev/item", "-1"))
                self.created.setdefault(index, set()).add(job.metadata.uid)
            elif kind == "DELETED":
                self.deleted += job.metadata.uid in self.live
                self.live.discard(job.metadata.uid)
            self.peak = max(self.peak, len(self.live))
            self.cond.notify_all()

    def close(self) -> None:
        self.closed.set()
        self.watch.stop()

    def wait(self, predicate: Any, timeout: float, what: str) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def twice(self) -> dict[int, int]:
        """Item indexes whose Job was created more than once, with the count."""
        with self.cond:
            return {i: len(uids) for i, uids in self.created.items() if len(uids) != 1}


@pytest.fixture
def jobs(k8s_api: Any, namespace: str) -> Iterator[JobCounter]:
    counter = JobCounter(k8s_api, namespace)
    yield counter
    counter.close()


def check_outputs(body: dict[str, Any], items: int, log: Path, *, emit: bool = True) -> None:
    status = body["status"]
    assert status["phase"] == "Succeeded", (status, log.read_text()[-5000:])
    fan = status["nodes"]["fan"]
    assert fan["items"]["succeeded"] == items
    assert fan.get("outputs") == ({"v": [2 * i for i in range(items)]} if emit else None)
    assert fan["succeededItems"] == f"0-{items - 1}"


def test_own_operator_keeps_a_200_item_fan_out_near_its_parallelism_in_jobs(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, jobs: JobCounter, tmp_path: Path
) -> None:
    items, parallelism = 200, 10
    log = tmp_path / "operator.log"
    op: OperatorProcess = start_operator(kubeconfig, namespace, log)
    try:
        create_workflow(k8s_api, namespace, fan_out("wide", items, parallelism))
        body = wait_workflow(k8s_api, namespace, "wide", timeout=900)
    finally:
        op.stop()
    check_outputs(body, items, log)
    assert jobs.twice() == {}, "an item's Job was created more than once"
    assert len(jobs.created) == items
    assert jobs.peak <= 2 * parallelism, f"{jobs.peak} Jobs at once"
    assert jobs.deleted >= items - 2 * parallelism  # they went while the node ran


def test_own_operator_killed_mid_fan_out_loses_no_item_and_runs_none_twice(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, jobs: JobCounter, tmp_path: Path
) -> None:
    items, parallelism = 40, 4
    marks = tmp_path / "marks"
    marks.touch()
    log = tmp_path / "operator.log"
    op = start_operator(kubeconfig, namespace, log)
    try:
        create_workflow(k8s_api, namespace, fan_out("survivor", items, parallelism, marks))
        # Killed once some items' Jobs are gone (only the status knows those items now)...
        jobs.wait(lambda: jobs.deleted >= 8, 300, "8 items' Jobs to be deleted")
        op.kill()
        op = start_operator(kubeconfig, namespace, log)
        # ...and again once the restarted operator has deleted more, mid-run.
        seen = jobs.deleted
        jobs.wait(lambda: jobs.deleted > seen + 4, 300, "the restarted operator to delete Jobs")
        op.kill()
        op = start_operator(kubeconfig, namespace, log)
        body = wait_workflow(k8s_api, namespace, "survivor", timeout=600)
    finally:
        op.stop()
    check_outputs(body, items, log)
    runs = sorted(int(line) for line in marks.read_text().split())
    assert runs == list(range(items)), "an item ran twice or never"
    assert jobs.twice() == {}, "an item's Job was created again after a restart"


@pytest.mark.scale
@pytest.mark.timeout(3600)  # thousands of pods on a small machine: make test-scale only
def test_own_operator_keeps_a_10_000_item_fan_out_at_parallelism_50_under_100_jobs(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, jobs: JobCounter, tmp_path: Path
) -> None:
    items = int(os.environ.get("SHOAL_LIVE_JOBS_ITEMS", "10000"))
    parallelism = 50
    log = tmp_path / "operator.log"
    # Thousands of pods on two cores: the API server's caches can stall pod starts for
    # longer than the suite's 15 s pending bound, which would fail items for the machine's
    # sake (a 10k run once lost 56 items so); this test measures live Jobs, not start-up.
    op = start_operator(
        kubeconfig, namespace, log, extra_args=["--log-level", "WARNING"], pending_timeout=180
    )
    began = time.monotonic()
    try:
        create_workflow(k8s_api, namespace, fan_out("huge", items, parallelism, emit=False))
        body = wait_workflow(k8s_api, namespace, "huge", timeout=3500)
    finally:
        op.stop()
    wall = time.monotonic() - began
    print(f"\nlive Jobs: peak {jobs.peak} for {items} items at parallelism {parallelism}")
    print(f"wall time: {wall:.0f} s ({items / wall:.1f} items/s)")
    check_outputs(body, items, log, emit=False)
    assert jobs.twice() == {}
    assert jobs.peak <= 2 * parallelism, f"{jobs.peak} Jobs at once"
