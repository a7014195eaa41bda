"""Mutexes, semaphores and memoize on a real control plane (issue 20, items 3 and 4).

Pods run as local processes, so each records itself in a shared directory: on start it
adds a file and appends how many files it then sees, and removes its file at the end. The
largest count is the most pods that ever ran at once, as the pods themselves saw it."""

from __future__ import annotations

import json
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
from tests.cluster.test_operator import workflow

pytestmark = pytest.mark.cluster

COUNT = 10
WORK = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"
"""A little CPU work (no sleep), so that pods running at once overlap."""


def counting(inside: Path, counts: Path) -> dict[str, Any]:
    script = (
        f'touch {inside}/"$SHOAL_WORKFLOW"; ls {inside} | wc -l >> {counts}; {WORK}; '
        f'rm {inside}/"$SHOAL_WORKFLOW"'
    )
    return {"name": "work", "command": ["sh", "-c", script]}


def contenders(inside: Path, counts: Path, sync: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        workflow(f"contender-{i}", counting(inside, counts), synchronization=sync)
        for i in range(COUNT)
    ]


def seen_at_once(counts: Path) -> list[int]:
    return [int(line) for line in counts.read_text().split()]


def overlap(bodies: list[dict[str, Any]]) -> int:
    """The most runs whose [startedAt, finishedAt] intervals share an instant."""
    edges = []
    for body in bodies:
        status = body["status"]
        edges += [(status["startedAt"], 1), (status["finishedAt"], -1)]
    most = now = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start
        now += step
        most = max(most, now)
    return most


SYNCS = [
    pytest.param({"mutexes": [{"name": "deploy"}]}, 1, id="mutex"),
    pytest.param({"semaphores": [{"name": "crawler", "limit": 3}]}, 3, id="semaphore-3"),
]


@pytest.mark.usefixtures("shoal_operator", "operator_log")
@pytest.mark.parametrize(("sync", "limit"), SYNCS)
def test_ten_contending_workflows_never_exceed_the_lock_limit(
    k8s_api: Any, namespace: str, tmp_path: Path, sync: dict[str, Any], limit: int
) -> None:
    inside, counts = tmp_path / "in", tmp_path / "counts"
    inside.mkdir()
    counts.touch()
    for doc in contenders(inside, counts, sync):
        create_workflow(k8s_api, namespace, doc)
    bodies = [
        wait_workflow(k8s_api, namespace, f"contender-{i}", timeout=240) for i in range(COUNT)
    ]
    assert [b["status"]["phase"] for b in bodies] == ["Succeeded"] * COUNT
    assert len(seen_at_once(counts)) == COUNT
    assert max(seen_at_once(counts)) <= limit
    assert overlap(bodies) <= limit
    if limit > 1:  # and a semaphore is no mutex: its holders did run side by side
        assert overlap(bodies) > 1


def test_own_operator_killed_mid_run_keeps_the_semaphore(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    inside, counts = tmp_path / "in", tmp_path / "counts"
    inside.mkdir()
    counts.touch()
    log = tmp_path / "operator.log"
    op: OperatorProcess = start_operator(kubeconfig, namespace, log)
    try:
        for doc in contenders(inside, counts, {"semaphores": [{"name": "s", "limit": 3}]}):
            create_workflow(k8s_api, namespace, doc)
        wait_until(lambda: len(seen_at_once(counts)) >= 2, 120, "two runs to have started")
        op.kill()
        with log.open("a") as f:
            f.write("\n===== killed mid-run; restarting =====\n")
        op = start_operator(kubeconfig, namespace, log)
        bodies = [
            wait_workflow(k8s_api, namespace, f"contender-{i}", timeout=240) for i in range(COUNT)
        ]
    finally:
        op.stop()
    assert [b["status"]["phase"] for b in bodies] == ["Succeeded"] * COUNT, op.output()
    assert len(seen_at_once(counts)) == COUNT
    assert max(seen_at_once(counts)) <= 3
    assert overlap(bodies) <= 3


def memoized(name: str, counter: Path) -> dict[str, Any]:
    node = {
        "name": "price",
        "command": ["sh", "-c", f"echo ran >> {counter}; echo 42"],
        "captureStdout": True,
        "memoize": {"key": "price-${{ params.day }}", "maxAge": "1h"},
    }
    return workflow(name, node, parameters={"day": "2026-12-07"})


def run(k8s_api: Any, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    create_workflow(k8s_api, namespace, doc)
    body = wait_workflow(k8s_api, namespace, doc["metadata"]["name"], timeout=120)
    assert body["status"]["phase"] == "Succeeded", body["status"]
    node: dict[str, Any] = body["status"]["nodes"]["price"]
    return node


@pytest.mark.usefixtures("shoal_operator", "operator_log")
def test_a_memoized_node_runs_once_across_two_workflows_and_again_after_max_age(
    k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    from kubernetes import client

    counter = tmp_path / "runs"
    first = run(k8s_api, namespace, memoized("first", counter))
    assert first["memoized"] == {"key": "price-2026-12-07", "hit": False}
    second = run(k8s_api, namespace, memoized("second", counter))
    assert second["memoized"] == {"key": "price-2026-12-07", "hit": True}
    assert second["outputs"] == first["outputs"] == {"result": "42"}
    assert "attempts" not in second or second["attempts"] == 0
    assert counter.read_text().split() == ["ran"]

    # Age the entry past maxAge (1h) in the namespace's cache instead of waiting an hour.
    leases = client.CoordinationV1Api(k8s_api)
    lease = leases.read_namespaced_lease("shoal-memo", namespace)
    entries = json.loads(lease.metadata.annotations["shoal.dev/shoal-memo"])
    entries["price-2026-12-07"]["createdAt"] -= 3601
    lease.metadata.annotations["shoal.dev/shoal-memo"] = json.dumps(entries)
    leases.replace_namespaced_lease("shoal-memo", namespace, lease)
    third = run(k8s_api, namespace, memoized("third", counter))
    assert third["memoized"]["hit"] is False
    assert counter.read_text().split() == ["ran", "ran"]


@pytest.mark.usefixtures("shoal_operator", "operator_log")
def test_deleting_the_holder_hands_the_mutex_to_the_waiter(k8s_api: Any, namespace: str) -> None:
    from tests.cluster.conftest import custom, get_workflow

    sync = {"mutexes": [{"name": "m"}]}
    holder = workflow("holder", {"name": "hold", "command": ["sleep", "120"]}, synchronization=sync)
    create_workflow(k8s_api, namespace, holder)

    def holds() -> bool:
        status = get_workflow(k8s_api, namespace, "holder").get("status") or {}
        return bool(status.get("locks") == {"held": ["mutex/m"]})

    wait_until(holds, 60, "the holder to hold the mutex")
    waiter = workflow("waiter", {"name": "go", "command": ["true"]}, synchronization=sync)
    create_workflow(k8s_api, namespace, waiter)
    waiting = wait_until(
        lambda: (get_workflow(k8s_api, namespace, "waiter").get("status") or {}).get("locks"),
        60,
        "the waiter's status to show its lock",
    )
    assert waiting["waiting"] == ["mutex/m"]
    wait_until(
        lambda: (
            (get_workflow(k8s_api, namespace, "waiter")["status"]["locks"]).get("holders")
            == ["holder"]
        ),
        30,
        "the waiter's status to name the holder",
    )
    assert get_workflow(k8s_api, namespace, "waiter")["status"]["phase"] == "Pending"
    custom(k8s_api).delete_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "workflows", "holder"
    )
    done = wait_workflow(k8s_api, namespace, "waiter", timeout=90)
    assert done["status"]["phase"] == "Succeeded", done["status"]
