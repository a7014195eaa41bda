"""Results only from the pod Shoal created for an attempt (shoal.kube.ownership, runner).

Labels are a claim anyone can write. The predicate accepts a pod only in the Workflow's
namespace and controlled by the Job the operator created; the runner tests feed it the
two forgeries of issue 13 (another namespace with the victim's labels, the same
namespace with an owner reference to a made-up Job uid) and show the victim unaffected,
the impostors counted, and the real pod's result taken.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from shoal.kube.api import ApiError, KubeApi
from shoal.kube.impostors import ImpostorReport
from shoal.kube.jobs import job_token
from shoal.kube.naming import job_name, task_labels
from shoal.kube.ownership import controller_ref, job_problem, pod_problem
from shoal.kube.runner import RunnerConfig, WorkflowRunner
from tests.unit.pod_fixtures import JOB, JOB_UID, WF_UID, completed

NAMESPACE = "data-pipelines"


def owned_pod() -> dict[str, Any]:
    pod = completed()
    pod["metadata"]["namespace"] = NAMESPACE
    return pod


def test_the_pod_of_the_attempts_job_in_the_workflows_namespace_is_accepted() -> None:
    assert pod_problem(owned_pod(), NAMESPACE, JOB_UID) is None


def test_a_pod_in_another_namespace_is_refused_whatever_its_labels_and_owner() -> None:
    pod = owned_pod()
    pod["metadata"]["namespace"] = "team-b"
    assert pod_problem(pod, NAMESPACE, JOB_UID) == (
        "it is in namespace 'team-b', not the Workflow's 'data-pipelines'"
    )


def test_a_pod_without_the_jobs_controller_reference_is_refused() -> None:
    no_owner = owned_pod()
    del no_owner["metadata"]["ownerReferences"]
    assert pod_problem(no_owner, NAMESPACE, JOB_UID) == "it has no controller owner"
    # An owner reference that is not the controller one names no controller.
    not_controller = owned_pod()
    not_controller["metadata"]["ownerReferences"][0]["controller"] = False
    assert pod_problem(not_controller, NAMESPACE, JOB_UID) == "it has no controller owner"


def test_a_pod_owned_by_another_uid_or_kind_is_refused() -> None:
    bogus = owned_pod()
    bogus["metadata"]["ownerReferences"][0]["uid"] = "00000000-0000-0000-0000-000000000000"
    assert "not the Job the operator created" in (pod_problem(bogus, NAMESPACE, JOB_UID) or "")
    replica = owned_pod()
    replica["metadata"]["ownerReferences"][0].update(apiVersion="apps/v1", kind="ReplicaSet")
    assert "ReplicaSet" in (pod_problem(replica, NAMESPACE, JOB_UID) or "")


def job(namespace: str = NAMESPACE, owner_uid: str = WF_UID, **ref: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": JOB,
            "namespace": namespace,
            "uid": JOB_UID,
            "ownerReferences": [
                {
                    "apiVersion": "shoal.dev/v1alpha1",
                    "kind": "Workflow",
                    "name": "catalog-integration",
                    "uid": owner_uid,
                    "controller": True,
                    **ref,
                }
            ],
        }
    }


def test_a_job_counts_only_in_the_namespace_and_controlled_by_the_workflow_uid() -> None:
    assert job_problem(job(), NAMESPACE, WF_UID) is None
    assert "namespace" in (job_problem(job("team-b"), NAMESPACE, WF_UID) or "")
    assert "another Workflow" in (job_problem(job(owner_uid="x"), NAMESPACE, WF_UID) or "")
    assert "CronJob" in (
        job_problem(job(kind="CronJob", apiVersion="batch/v1"), NAMESPACE, WF_UID) or ""
    )
    assert job_problem(job(controller=False), NAMESPACE, WF_UID) == "it has no controller owner"


def test_controller_ref_ignores_malformed_owner_entries() -> None:
    pod = {
        "metadata": {"ownerReferences": ["junk", {"uid": "a"}, {"uid": "b", "controller": True}]}
    }
    assert controller_ref(pod) == {"uid": "b", "controller": True}
    assert controller_ref({}) is None


def test_impostors_are_all_counted_but_logged_at_most_once_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted: list[str] = []
    now = [100.0]
    report = ImpostorReport(counted.append, interval=10, clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="shoal.impostors"):
        for _ in range(50):
            report("pod", "pod team-b/forged claims ...")
        now[0] += 10
        report("pod", "pod team-b/forged claims ...")
    assert counted == ["pod"] * 51
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0] == "ignored impostor pod: pod team-b/forged claims ..."
    assert lines[1].endswith("(49 more since the last report)")


# --- the runner: forged pods never complete the victim's node ---------------------------

WF = "victim"
GENERATED_JOB_UID = "5f0e1d2c-3b4a-4958-8766-554433221100"
REAL = {"who": "real"}
FORGED = {"who": "forged"}


class FakeApi:
    """Just enough of KubeApi for one job node: the Job's creation can be held back."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.creating = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()
        self.patches: list[dict[str, Any]] = []

    async def create(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any] | None:
        self.created.append(body)
        self.creating.set()
        await self.release.wait()
        done = copy.deepcopy(body)
        done["metadata"]["uid"] = GENERATED_JOB_UID
        return done

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        if path.endswith(("/jobs", "/pods")):
            return {"items": []}
        raise ApiError(404, "NotFound", path)

    async def merge_patch(self, path: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        self.patches.append(body)
        return {}

    async def delete(self, path: str, **_: Any) -> bool:
        return True

    async def delete_collection(self, path: str, label_selector: str, **_: Any) -> None:
        return None

    async def lines(self, path: str, **params: Any) -> AsyncIterator[str]:
        for line in ():
            yield line

    async def short_lines(self, path: str, **params: Any) -> AsyncIterator[str]:
        for line in ():
            yield line

    async def text(self, path: str, **params: Any) -> str:
        return ""


def body() -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": WF, "namespace": "team-a", "uid": WF_UID},
        "spec": {"nodes": [{"name": "a", "job": "shoal.echo"}]},
    }


def finished_pod(
    name: str, namespace: str, outputs: dict[str, Any], owner_uid: str | None, token: str
) -> dict[str, Any]:
    """A terminated pod claiming attempt 1 of node `a`, its result in the termination log
    with `token` (forged pods get the attempt's real one: ownership alone must stop them)."""
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": f"uid-{name}",
        "labels": task_labels(WF, WF_UID, "a", 0, 1),
    }
    if owner_uid is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": job_name(WF, WF_UID, "a", 0, 1),
                "uid": owner_uid,
                "controller": True,
            }
        ]
    result = {"v": 2, "token": token, "status": "succeeded", "outputs": outputs, "message": ""}
    state = {"exitCode": 0, "reason": "Completed", "message": json.dumps(result)}
    return {
        "metadata": meta,
        "status": {
            "phase": "Succeeded",
            "containerStatuses": [{"name": "main", "state": {"terminated": state}}],
        },
    }


async def until(predicate: Any, what: str, seconds: float = 10) -> None:
    """Let the runner's loop run until `predicate` holds (a condition with a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    for _ in itertools.count():
        if predicate():
            return
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def final_status(api: FakeApi) -> dict[str, Any]:
    statuses = [p["status"] for p in api.patches if "nodes" in p.get("status", {})]
    return cast(dict[str, Any], statuses[-1])


async def test_forged_pods_are_ignored_and_counted_and_the_real_result_is_kept() -> None:
    api = FakeApi()
    impostors: list[tuple[str, str]] = []
    runner = WorkflowRunner(
        cast(KubeApi, api),
        body(),
        RunnerConfig(status_interval_seconds=0.01),
        lambda *a: None,
        on_impostor=lambda kind, text: impostors.append((kind, text)),
    )
    task = asyncio.create_task(runner.run())
    await until(lambda: api.created, "the Job")
    token = job_token(api.created[0])
    # Another namespace, the victim's labels: what made team-a's Workflow succeed.
    runner.pod_event("ADDED", finished_pod("forged", "team-b", FORGED, None, token))
    # The same namespace, owned by a Job uid nobody created.
    runner.pod_event("ADDED", finished_pod("bogus", "team-a", FORGED, "0000-bogus", token))
    await until(lambda: len(impostors) == 2, "both impostors reported")
    assert not task.done()
    assert [kind for kind, _ in impostors] == ["pod", "pod"]
    assert "pod team-b/forged claims Workflow team-a/victim node a" in impostors[0][1]
    assert "namespace 'team-b'" in impostors[0][1]
    assert "not the Job the operator created" in impostors[1][1]

    runner.pod_event("ADDED", finished_pod("real", "team-a", REAL, GENERATED_JOB_UID, token))
    await asyncio.wait_for(task, 30)
    status = final_status(api)
    assert status["phase"] == "Succeeded"
    assert status["nodes"]["a"]["outputs"] == REAL


async def test_the_real_pod_seen_before_its_job_creation_returned_still_counts() -> None:
    api = FakeApi()
    api.release.clear()
    impostors: list[tuple[str, str]] = []
    runner = WorkflowRunner(
        cast(KubeApi, api),
        body(),
        RunnerConfig(status_interval_seconds=0.01),
        lambda *a: None,
        on_impostor=lambda kind, text: impostors.append((kind, text)),
    )
    task = asyncio.create_task(runner.run())
    await api.creating.wait()
    token = job_token(api.created[0])
    runner.pod_event("ADDED", finished_pod("real", "team-a", REAL, GENERATED_JOB_UID, token))
    runner.pod_event("ADDED", finished_pod("bogus", "team-a", FORGED, "0000-bogus", token))
    attempt = runner.attempts[("a", 0, 1)]
    await until(lambda: len(attempt.parked) == 2, "both pods parked")
    assert not task.done()
    api.release.set()
    await asyncio.wait_for(task, 30)
    assert final_status(api)["nodes"]["a"]["outputs"] == REAL
    assert [kind for kind, _ in impostors] == ["pod"]
