"""Restart safety: an operator killed at any moment finishes the run, nothing twice, nothing lost.

The test drives its own operator (its namespace is excluded from the session's) and
SIGKILLs it three times at moments chosen by watching the cluster: right after the first
Job appears (mid-dispatch), while fan-out pods run, and the instant a pod is seen to end
(between a pod's end and the status update). Each task appends one line to a marker file
when it runs, so a task run twice shows up as a duplicate line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import OperatorProcess, create_workflow, start_operator, wait_workflow

pytestmark = pytest.mark.cluster

ITEMS = 6


def marking(node: str, seconds: float, output: str) -> list[str]:
    """A shell command that records its run, works a little, and emits one output."""
    script = (
        'echo "$SHOAL_NODE-${SHOAL_ITEM_INDEX:-x}" >> "$MARKS"; '
        f"sleep {seconds}; "
        'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN "'
        f'\'{{"type":"output","key":"v","value":{output}}}\''
    )
    return ["sh", "-c", script]


def workflow(marks: Path) -> dict[str, Any]:
    env = [{"name": "MARKS", "value": str(marks)}]
    nodes = [
        {"name": "a", "command": marking("a", 0.5, '"a"'), "env": env},
        {"name": "b", "command": marking("b", 0.5, '"b"'), "env": env, "dependsOn": ["a"]},
        {
            "name": "fan",
            "dependsOn": ["a"],
            "forEach": list(range(ITEMS)),
            "parallelism": 3,
            "command": marking("fan", 1.0, "${{ item }}"),
            "env": env,
        },
        {
            "name": "join",
            "dependsOn": ["b", "fan"],
            "command": [
                "sh",
                "-c",
                'echo "join-x" >> "$MARKS"; '
                'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN {\\"type\\":\\"output\\",'
                '\\"key\\":\\"got\\",\\"value\\":\\"$1\\"}"',
                "join",
                "${{ nodes.b.outputs.v }}:${{ nodes.fan.outputs.v }}",
            ],
            "env": env,
        },
    ]
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "survivor"},
        "spec": {"nodes": nodes},
    }


class Recorder:
    """Watches Jobs and pods in a namespace from a thread; tests wait on what it saw."""

    def __init__(self, k8s_api: Any, namespace: str) -> None:
        from kubernetes import client

        self.core = client.CoreV1Api(k8s_api)
        self.batch = client.BatchV1Api(k8s_api)
        self.namespace = namespace
        self.jobs_added: list[str] = []
        self.pods: dict[str, dict[str, Any]] = {}
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._watch, args=(self.batch.list_namespaced_job, self._job)),
            threading.Thread(target=self._watch, args=(self.core.list_namespaced_pod, self._pod)),
        ]
        for t in self.threads:
            t.daemon = True
            t.start()

    def _watch(self, lister: Any, handle: Callable[[str, Any], None]) -> None:
        from kubernetes import watch

        while not self.stop.is_set():
            for event in watch.Watch().stream(lister, self.namespace, timeout_seconds=5):
                handle(event["type"], event["object"])
                if self.stop.is_set():
                    return

    def _job(self, kind: str, job: Any) -> None:
        with self.cond:
            if kind == "ADDED" and job.metadata.name not in self.jobs_added:
                self.jobs_added.append(job.metadata.name)
            self.cond.notify_all()

    def _pod(self, kind: str, pod: Any) -> None:
        statuses = pod.status.container_statuses or []
        state = statuses[0].state if statuses else None
        with self.cond:
            self.pods[pod.metadata.name] = {
                "node": (pod.metadata.labels or {}).get("shoal.dev/node"),
                "running": bool(state and state.running),
                "ended": bool(state and state.terminated),
            }
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def recorder(k8s_api: Any, namespace: str) -> Iterator[Recorder]:
    rec = Recorder(k8s_api, namespace)
    yield rec
    rec.stop.set()


def test_own_operator_killed_three_times_finishes_without_duplicates(
    crds: None,
    kubeconfig: Path,
    k8s_api: Any,
    namespace: str,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    marks = tmp_path / "marks"
    marks.touch()
    log = tmp_path / "operator.log"
    op: OperatorProcess = start_operator(kubeconfig, namespace, log)

    def restart(after: str) -> None:
        nonlocal op
        op.kill()
        with log.open("a") as f:
            f.write(f"\n===== killed {after}; restarting =====\n")
        op = start_operator(kubeconfig, namespace, log)

    try:
        create_workflow(k8s_api, namespace, workflow(marks))
        recorder.wait(lambda: bool(recorder.jobs_added), 60, "the first Job")
        restart("right after the first Job was created")

        def fan_running() -> bool:
            return any(p["node"] == "fan" and p["running"] for p in recorder.pods.values())

        recorder.wait(fan_running, 90, "a running fan-out pod")
        restart("while fan-out pods were running")

        ended_before = sum(p["ended"] for p in recorder.pods.values())
        recorder.wait(
            lambda: sum(p["ended"] for p in recorder.pods.values()) > ended_before,
            90,
            "another pod to end",
        )
        restart("the instant a pod was seen to end")

        body = wait_workflow(k8s_api, namespace, "survivor", timeout=180)
    finally:
        op.stop()
    status = body["status"]
    assert status["phase"] == "Succeeded", (status, log.read_text()[-5000:])

    runs = marks.read_text().split()
    expected = ["a-x", "b-x", "join-x"] + [f"fan-{i}" for i in range(ITEMS)]
    assert sorted(runs) == sorted(expected), "a task ran twice or never"
    # One Job per task, each the first attempt: nothing was dispatched twice.
    assert len(recorder.jobs_added) == len(expected)
    assert [name.rsplit("-", 3)[2] for name in recorder.jobs_added] == ["1"] * len(expected)
    assert status["nodes"]["fan"]["outputs"] == {"v": list(range(ITEMS))}
    assert status["nodes"]["join"]["outputs"] == {"got": f"b:{list(range(ITEMS))}".replace(" ", "")}
