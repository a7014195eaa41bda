"""Sharded operators on the real control plane (docs/scaling.md).

Each test drives operators of its own (the namespace is excluded from the session's):
three replicas share a batch of workflows, one of them SIGKILLed half-way; and a replica
frozen past its renew deadline (SIGSTOP), whose shards another holder took meanwhile,
sends no write once it runs again. Every node appends a line to a marks file when it
runs, so a node run twice shows up as a duplicate line; every Job carries the replica
that created it (`shoal.dev/created-by`).
"""

from __future__ import annotations

import contextlib
import datetime
import signal
import socket
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import (
    OperatorProcess,
    create_workflow,
    start_operator,
    wait_until,
    wait_workflow,
)

pytestmark = pytest.mark.cluster

SHARDS = 8
LEASE, RENEW, RETRY = 10.0, 7.0, 1.0
"""Shorter than the defaults (15, 10, 2) for quick hand-offs; long enough for a replica
on a loaded 2-core machine to renew in time."""
CREATED_BY = "shoal.dev/created-by"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replica:
    """One sharded `shoal operator` process with its own identity and metrics port."""

    def __init__(self, kubeconfig: Path, namespace: str, name: str, log: Path) -> None:
        self.name, self.port, self.log = name, free_port(), log
        args = [
            *("--shards", str(SHARDS), "--identity", name, "--lease-namespace", namespace),
            *("--lease-duration", str(LEASE), "--renew-deadline", str(RENEW)),
            *("--lease-retry", str(RETRY), "--metrics-port", str(self.port)),
            *("--metrics-host", "127.0.0.1"),
        ]
        self.op: OperatorProcess = start_operator(kubeconfig, namespace, log, extra_args=args)

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def metric(self, name: str) -> float:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            for line in resp.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} not in {self.name}'s metrics")


def marking(node: str, seconds: float) -> list[str]:
    script = f'echo "$SHOAL_WORKFLOW/{node}-${{SHOAL_ITEM_INDEX:-x}}" >> "$MARKS"; sleep {seconds}'
    return ["sh", "-c", script]


def workflow(name: str, marks: Path, seconds: float = 0.2, chain: int = 2) -> dict[str, Any]:
    """A chain of `chain` nodes, then a fan-out of two items."""
    env = [{"name": "MARKS", "value": str(marks)}]
    nodes: list[dict[str, Any]] = []
    for i in range(chain):
        nodes.append({"name": f"s{i}", "command": marking(f"s{i}", seconds), "env": env})
        if i:
            nodes[-1]["dependsOn"] = [f"s{i - 1}"]
    nodes.append(
        {
            "name": "fan",
            "dependsOn": [f"s{chain - 1}"],
            "forEach": [0, 1],
            "command": marking("fan", seconds),
            "env": env,
        }
    )
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": name},
        "spec": {"nodes": nodes},
    }


def expected_marks(names: list[str], chain: int = 2) -> list[str]:
    per = [f"s{i}-x" for i in range(chain)] + ["fan-0", "fan-1"]
    return sorted(f"{n}/{m}" for n in names for m in per)


def holders(k8s_api: Any, namespace: str) -> dict[str, str]:
    from kubernetes import client

    leases: Any = client.CoordinationV1Api(k8s_api).list_namespaced_lease(
        namespace, label_selector="shoal.dev/lease=shard"
    )
    return {lease.metadata.name: lease.spec.holder_identity or "" for lease in leases.items}


def jobs(k8s_api: Any, namespace: str) -> list[Any]:
    from kubernetes import client

    return list(client.BatchV1Api(k8s_api).list_namespaced_job(namespace).items)


def test_own_operator_three_replicas_share_workflows_each_job_created_once(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.touch()
    names = ["r0", "r1", "r2"]
    replicas = {n: Replica(kubeconfig, namespace, n, tmp_path / f"{n}.log") for n in names}
    try:

        def spread() -> bool:
            counts = Counter(holders(k8s_api, namespace).values())
            return sum(counts[n] for n in names) == SHARDS and min(counts[n] for n in names) >= 2

        wait_until(spread, 90, "the shards spread over three replicas")
        first = [f"calm-{i}" for i in range(12)]
        for name in first:
            create_workflow(k8s_api, namespace, workflow(name, marks))
        for name in first:
            assert wait_workflow(k8s_api, namespace, name, timeout=240)["status"]["phase"] == (
                "Succeeded"
            )
        # The normal hand-off never needed the last line of defence.
        clashes = [replicas[n].metric("shoal_api_already_exists") for n in names]
        assert clashes == [0.0] * 3, [
            line for n in names for line in replicas[n].log_lines() if "already exists" in line
        ]
        creators = Counter(
            (j.metadata.annotations or {}).get(CREATED_BY) for j in jobs(k8s_api, namespace)
        )
        assert set(creators) <= set(names), creators
        assert len([c for c in creators if c]) >= 2, f"one replica did all the work: {creators}"

        second = [f"storm-{i}" for i in range(12)]
        for name in second:
            create_workflow(k8s_api, namespace, workflow(name, marks, seconds=1.0))
        wait_until(lambda: len(jobs(k8s_api, namespace)) > len(first) * 4 + 6, 120, "jobs")
        replicas["r1"].op.kill()
        for name in second:
            assert wait_workflow(k8s_api, namespace, name, timeout=300)["status"]["phase"] == (
                "Succeeded"
            )
        wait_until(
            lambda: "r1" not in holders(k8s_api, namespace).values(), 60, "r1's shards moved"
        )
    finally:
        for rep in replicas.values():
            rep.op.stop()
    assert sorted(marks.read_text().split()) == expected_marks(first + second), (
        "a node ran twice or never"
    )
    all_jobs = jobs(k8s_api, namespace)
    assert all((j.metadata.annotations or {}).get(CREATED_BY) in names for j in all_jobs)
    assert all(j.metadata.name.rsplit("-", 3)[2] == "1" for j in all_jobs), "a node was redone"


class Thief:
    """The test as another replica: takes every shard lease (once they may be taken) and
    renews them from a thread until released."""

    def __init__(self, k8s_api: Any, namespace: str) -> None:
        from kubernetes import client

        self.leases = client.CoordinationV1Api(k8s_api)
        self.namespace = namespace
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._renew, daemon=True)

    def _write(self, holder: str | None) -> None:
        now = datetime.datetime.now(datetime.UTC)
        listing: Any = self.leases.list_namespaced_lease(
            self.namespace, label_selector="shoal.dev/lease=shard"
        )
        for lease in listing.items:
            lease.spec.holder_identity = holder
            lease.spec.renew_time = now
            name = str(lease.metadata.name)
            self.leases.replace_namespaced_lease(name, self.namespace, lease)

    def take(self) -> None:
        self._write("thief")
        self.thread.start()

    def _renew(self) -> None:
        while not self.stop.wait(RETRY / 2):
            self._write("thief")

    def release(self) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        self._write(None)


def snapshot(k8s_api: Any, namespace: str, name: str) -> tuple[str, list[str]]:
    """The workflow's resourceVersion and the Jobs: only the operator changes either."""
    from kubernetes import client

    body: Any = client.CustomObjectsApi(k8s_api).get_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "workflows", name
    )
    return body["metadata"]["resourceVersion"], sorted(
        j.metadata.name for j in jobs(k8s_api, namespace)
    )


def test_own_operator_frozen_past_its_renew_deadline_writes_nothing_once_thawed(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.touch()
    rep = Replica(kubeconfig, namespace, "r0", tmp_path / "r0.log")
    thief = Thief(k8s_api, namespace)
    try:
        wait_until(
            lambda: list(holders(k8s_api, namespace).values()) == ["r0"] * SHARDS,
            60,
            "r0 holding all",
        )
        create_workflow(k8s_api, namespace, workflow("frozen", marks, seconds=3.0, chain=3))
        wait_until(lambda: jobs(k8s_api, namespace), 60, "the first Job")
        rep.op.proc.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        # Another replica may take the leases only once they went unrenewed for the
        # lease duration: that wait is the protocol under test, not a synchronisation.
        wait_until(lambda: time.monotonic() > stopped_at + LEASE + RETRY, LEASE * 3, "expiry")
        thief.take()
        before = snapshot(k8s_api, namespace, "frozen")
        rep.op.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: rep.metric("shoal_shards_held") == 0, 30, "r0 to let its shards go")
        thawed_at = time.monotonic()
        # While the thief holds the shards, r0 (with a finished pod to act on) sends nothing.
        wait_until(lambda: time.monotonic() > thawed_at + 3 * RETRY, 30, "an audit window")
        assert snapshot(k8s_api, namespace, "frozen") == before, "r0 wrote after its deadline"
        thief.release()
        body = wait_workflow(k8s_api, namespace, "frozen", timeout=180)
        assert body["status"]["phase"] == "Succeeded", rep.op.output()
    finally:
        thief.stop.set()
        with contextlib.suppress(ProcessLookupError):
            rep.op.proc.send_signal(signal.SIGCONT)
        rep.op.stop()
    assert sorted(marks.read_text().split()) == expected_marks(["frozen"], chain=3)
    assert {(j.metadata.annotations or {}).get(CREATED_BY) for j in jobs(k8s_api, namespace)} == {
        "r0"
    }


def test_own_operator_a_frequent_cron_fires_once_per_time_across_a_hand_off(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    """Every 2 s across three replicas; the replica holding the cron's shard is stopped
    (SIGTERM, as in a rolling update) and another carries on: no time missed or doubled."""
    from shoal.sharding.policy import shard_of
    from tests.cluster.test_cron import NOOP, Runs, create_cron, cron, epoch, get_cron, watch_runs

    names = ["r0", "r1", "r2"]
    replicas = {n: Replica(kubeconfig, namespace, n, tmp_path / f"{n}.log") for n in names}
    seen: Runs = {}

    def at_least(count: int) -> Any:
        def enough(runs: Runs) -> bool:
            seen.update(runs)
            return len(seen) >= count

        return enough

    try:
        wait_until(lambda: sorted(set(holders(k8s_api, namespace).values())) == names, 90, "spread")
        create_cron(
            k8s_api,
            namespace,
            cron("tick", NOOP, catchUp={"policy": "all"}, successfulRunsHistoryLimit=100),
        )
        watch_runs(k8s_api, namespace, "tick", at_least(3), timeout=60)
        shard = shard_of(get_cron(k8s_api, namespace, "tick")["metadata"]["uid"], SHARDS)
        holder = holders(k8s_api, namespace)[f"shoal-shard-{shard:02d}"]
        replicas[holder].op.stop()
        watch_runs(k8s_api, namespace, "tick", at_least(len(seen) + 6), timeout=90)
        survivors = [n for n in names if n != holder]
        assert [replicas[n].metric("shoal_api_already_exists") for n in survivors] == [0.0, 0.0]
    finally:
        for rep in replicas.values():
            rep.op.stop()
    epochs = sorted(epoch(n) for n in seen)
    assert epochs == list(range(epochs[0], epochs[-1] + 1, 2)), "a time was missed"
    creators = {(r["metadata"].get("annotations") or {}).get(CREATED_BY) for r in seen.values()}
    assert holder in creators, creators
    assert len(creators - {holder}) == 1, f"after the hand-off one replica fires: {creators}"


def test_own_operator_scaled_three_to_one_to_three_while_workflows_run(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    """A Deployment scaled 3 → 1 → 3: leaving replicas drain and release (SIGTERM), new
    ones are handed shards; every workflow finishes, no node runs twice, and the
    hand-offs never fall back on AlreadyExists."""
    marks = tmp_path / "marks"
    marks.touch()
    replicas = {
        n: Replica(kubeconfig, namespace, n, tmp_path / f"{n}.log") for n in ("a", "b", "c")
    }

    def held_by(names: set[str]) -> bool:
        return set(holders(k8s_api, namespace).values()) == names

    try:
        wait_until(lambda: held_by({"a", "b", "c"}), 90, "the shards spread over a, b, c")
        runs = [f"scale-{i}" for i in range(12)]
        for name in runs:
            create_workflow(k8s_api, namespace, workflow(name, marks, seconds=1.0, chain=3))
        wait_until(lambda: len(jobs(k8s_api, namespace)) >= 6, 120, "work under way")
        replicas["b"].op.stop()
        replicas["c"].op.stop()
        wait_until(lambda: held_by({"a"}), 60, "a holding every shard")
        for name in ("d", "e"):
            replicas[name] = Replica(kubeconfig, namespace, name, tmp_path / f"{name}.log")
        wait_until(lambda: held_by({"a", "d", "e"}), 90, "the shards spread over a, d, e")
        for name in runs:
            body = wait_workflow(k8s_api, namespace, name, timeout=300)
            assert body["status"]["phase"] == "Succeeded", name
        exists = [replicas[n].metric("shoal_api_already_exists") for n in ("a", "d", "e")]
    finally:
        for rep in replicas.values():
            rep.op.stop()
    assert exists == [0.0, 0.0, 0.0]
    assert sorted(marks.read_text().split()) == expected_marks(runs, chain=3), "a node ran twice"
    assert all(j.metadata.name.rsplit("-", 3)[2] == "1" for j in jobs(k8s_api, namespace))
