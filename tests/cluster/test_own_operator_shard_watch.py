"""Sharded replicas watch only their own shards' pods, on the real control plane
(docs/scaling.md, "Watches filtered by shard"; kube/shard_watch.py).

Three replicas run a batch of workflows with fan-outs while the test runs one
unfiltered watch of the same pods beside them: what each replica would receive without
the shard label. Every Job and pod must carry the shard of its Workflow's uid; each
replica must receive events only of shards it held (`shoal_pod_events_total{shard}`
against the leases it held and the "shard N acquired" lines of its log); each shard's
pods must reach the replicas (no event lost to the filter); and the three together must
receive about what one unfiltered watch does, where three unfiltered ones would receive
three times that.
"""

from __future__ import annotations

import re
import threading
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from shoal.sharding.policy import shard_of
from tests.cluster.conftest import create_workflow, wait_until, wait_workflow
from tests.cluster.test_own_operator_sharding import (
    SHARDS,
    Replica,
    expected_marks,
    holders,
    workflow,
)

pytestmark = pytest.mark.cluster

SELECTOR = "app.kubernetes.io/managed-by=shoal"
SHARD, WORKFLOW_UID = "shoal.dev/shard", "shoal.dev/workflow-uid"
NAMES = ["r0", "r1", "r2"]
ACQUIRED = re.compile(r"shard (\d+) acquired")


class ReferenceWatch:
    """The test as one unfiltered watch of the namespace's Shoal pods (or Jobs), in a
    thread: every object it saw, even those deleted since (fan-out items' Jobs go once
    recorded), and how many events it received."""

    def __init__(self, list_fn: Any, namespace: str) -> None:
        self.list_fn, self.namespace = list_fn, namespace
        self.events = 0
        self.seen: dict[str, Any] = {}
        """Object name → the object, as last seen."""
        self.failure: BaseException | None = None
        self.stop = threading.Event()
        listing: Any = list_fn(namespace, label_selector=SELECTOR)
        self.version: str = listing.metadata.resource_version
        assert not listing.items, "the namespace starts empty"
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from kubernetes import watch

        try:
            while not self.stop.is_set():  # each request ends within 2 s to see `stop`
                stream = watch.Watch().stream(
                    self.list_fn,
                    self.namespace,
                    label_selector=SELECTOR,
                    resource_version=self.version,
                    timeout_seconds=2,
                )
                for event in stream:
                    obj = event["object"]
                    self.version = obj.metadata.resource_version
                    if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                        self.events += 1
                        self.seen[obj.metadata.name] = obj
        except BaseException as err:  # reported by `close`: the reference must be whole
            self.failure = err

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the reference watch did not stop"
        assert self.failure is None, f"the reference watch failed: {self.failure!r}"


def pod_events(rep: Replica) -> Counter[str]:
    """The replica's `shoal_pod_events_total` by shard label."""
    url = f"http://127.0.0.1:{rep.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    found: Counter[str] = Counter()
    for match in re.finditer(r'^shoal_pod_events_total\{shard="([^"]*)"\} (\S+)$', text, re.M):
        found[match[1]] = int(float(match[2]))
    return found


def held_now(k8s_api: Any, namespace: str) -> dict[str, set[int]]:
    """Replica → the shards its leases say it holds."""
    held: dict[str, set[int]] = {n: set() for n in NAMES}
    for lease, holder in holders(k8s_api, namespace).items():
        if holder in held:
            held[holder].add(int(lease.rsplit("-", 1)[-1]))
    return held


def test_own_operator_shard_watch_each_replica_receives_only_its_shards_pods(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    from kubernetes import client

    marks = tmp_path / "marks"
    marks.touch()
    replicas = {n: Replica(kubeconfig, namespace, n, tmp_path / f"{n}.log") for n in NAMES}
    references: list[ReferenceWatch] = []
    try:
        quotas = {"r0": 3, "r1": 3, "r2": 2}  # sharding.policy.quotas for 8 shards
        wait_until(
            lambda: Counter(holders(k8s_api, namespace).values()) == quotas,
            90,
            "the shards spread over three replicas at their quotas",
        )
        allowed = held_now(k8s_api, namespace)
        log_marks = {n: len(replicas[n].log_lines()) for n in NAMES}
        for list_fn in (
            client.CoreV1Api(k8s_api).list_namespaced_pod,
            client.BatchV1Api(k8s_api).list_namespaced_job,
        ):
            references.append(ReferenceWatch(list_fn, namespace))
        pods, job_watch = references
        names = [f"watched-{i}" for i in range(12)]
        uids = {
            n: create_workflow(k8s_api, namespace, workflow(n, marks, chain=1))["metadata"]["uid"]
            for n in names
        }
        for name in names:
            body = wait_workflow(k8s_api, namespace, name, timeout=240)
            assert body["status"]["phase"] == "Succeeded", name
        received = {n: pod_events(replicas[n]) for n in NAMES}  # before the reference stops
        for n in NAMES:  # a shard acquired later (a hand-off under load) is allowed too
            later = replicas[n].log_lines()[log_marks[n] :]
            allowed[n] |= {int(m[1]) for line in later if (m := ACQUIRED.search(line))}
    finally:
        for rep in replicas.values():
            rep.op.stop()
        for reference in references:
            reference.close()
    assert sorted(marks.read_text().split()) == expected_marks(names, chain=1)

    # The label, written once: every Job and pod carries its Workflow's shard.
    shard_by_uid = {uid: str(shard_of(uid, SHARDS)) for uid in uids.values()}
    assert len(job_watch.seen) == len(names) * 3, "a Job per node and item"
    for name, job in job_watch.seen.items():
        labels = job.metadata.labels or {}
        assert labels.get(SHARD) == shard_by_uid[labels[WORKFLOW_UID]], name
        assert (job.spec.template.metadata.labels or {}).get(SHARD) == labels[SHARD], name
    pod_labels = {name: pod.metadata.labels or {} for name, pod in pods.seen.items()}
    assert len(pod_labels) == len(names) * 3, "a pod per Job"
    for name, labels in pod_labels.items():
        assert labels.get(SHARD) == shard_by_uid[labels[WORKFLOW_UID]], name

    # Each replica received only pods of shards it held: with the unfiltered watch of
    # before, each would have received every shard's (12 workflows cover most of 8).
    for n in NAMES:
        shards = {s for s, count in received[n].items() if count}
        assert {int(s) for s in shards} <= allowed[n], (n, received[n], allowed[n])
    # No pod's events were lost to the filter: each shard's pods reached a replica.
    pods_per_shard = Counter(labels[SHARD] for labels in pod_labels.values())
    for shard, count in pods_per_shard.items():
        got = sum(received[n][shard] for n in NAMES)
        assert got >= count, f"shard {shard}: {got} events for {count} pods"
    # Together about one watch's worth, not three.
    total = sum(sum(c.values()) for c in received.values())
    print(f"\npod events: {total} over three replicas {dict(received)}; {pods.events} one watch")
    assert total <= 1.5 * pods.events, (total, pods.events, received)
