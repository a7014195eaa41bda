"""Reading worker pods (shoal.kube.pods): how an attempt ended, or why it is stuck.

The fixtures (`pod_fixtures.py`) are shaped like what the API server returns for a Job's
pod: pending unschedulable, image pull back-off, running, completed, failed, OOMKilled,
evicted (two kubelet generations), disrupted, being deleted.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shoal.kube.pods import (
    PodView,
    end_reason,
    is_infrastructure_failure,
    parse_time,
    pending_problem,
    pending_verdict,
    read_pod,
)
from tests.unit.pod_fixtures import (
    CREATED,
    EVICTION,
    FINISHED,
    IMAGE,
    JOB,
    JOB_UID,
    LOG_TAIL,
    POD,
    RESULT,
    SCHEDULER_MESSAGE,
    STARTED,
    WF_UID,
    base_pod,
    being_deleted,
    completed,
    container_status,
    deleted_after_sigterm,
    disrupted_without_reason,
    error_exit_3,
    evicted,
    evicted_container_unknown,
    image_pull_backoff,
    oom_killed,
    pending_unschedulable,
    running,
    terminated,
)


def view(pod: dict[str, Any]) -> PodView:
    # Round-trip through JSON: exactly what arrives from the API server, nothing shared.
    result = read_pod(json.loads(json.dumps(pod)))
    assert result is not None
    return result


# --- read_pod --------------------------------------------------------------------------------


def test_identity_comes_from_the_labels_and_metadata() -> None:
    v = view(running())
    assert v.name == POD
    assert v.uid == "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f"
    assert v.workflow_uid == WF_UID
    assert v.key == ("integration", 4, 2)
    assert (v.node, v.index, v.attempt) == ("integration", 4, 2)
    assert v.created_at == parse_time(CREATED)
    assert v.memory_limit == "256Mi"


def test_pending_unschedulable_carries_the_schedulers_message() -> None:
    v = view(pending_unschedulable())
    assert v.phase == "Pending"
    assert v.unschedulable == SCHEDULER_MESSAGE
    assert not v.running
    assert not v.terminated
    assert v.exit_code is None
    assert v.started_at is None
    assert pending_problem(v) == f"Unschedulable: {SCHEDULER_MESSAGE}"
    assert end_reason(v) is None
    assert not is_infrastructure_failure(v)


def test_an_unschedulable_condition_without_message_still_says_why() -> None:
    pod = pending_unschedulable()
    del pod["status"]["conditions"][0]["message"]
    assert pending_problem(view(pod)) == "Unschedulable: Unschedulable"


def test_image_pull_backoff_is_a_pending_problem_with_the_kubelets_message() -> None:
    v = view(image_pull_backoff())
    assert v.phase == "Pending"
    assert v.unschedulable is None
    assert v.waiting_reason == "ImagePullBackOff"
    assert pending_problem(v) == f'ImagePullBackOff: Back-off pulling image "{IMAGE}"'
    assert not v.terminated
    assert not v.running


@pytest.mark.parametrize(
    "reason", ["ErrImagePull", "InvalidImageName", "CreateContainerConfigError"]
)
def test_other_stuck_waiting_reasons_are_pending_problems(reason: str) -> None:
    pod = image_pull_backoff()
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": reason}}
    assert pending_problem(view(pod)) == reason


def test_container_creating_is_not_a_problem_yet() -> None:
    pod = image_pull_backoff()
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    assert pending_problem(view(pod)) is None


def test_a_fresh_pod_without_status_reads_as_pending() -> None:
    pod = base_pod()
    del pod["status"]
    v = view(pod)
    assert v.phase == "Pending"
    assert pending_problem(v) is None
    assert not v.terminated


def test_a_pod_stuck_for_a_reason_fails_its_node_with_that_reason() -> None:
    verdict = pending_verdict(view(pending_unschedulable()), JOB, 15)
    assert verdict.message == f"did not start within 15s: Unschedulable: {SCHEDULER_MESSAGE}"
    assert not verdict.infrastructure
    assert not pending_verdict(view(image_pull_backoff()), JOB, 15).infrastructure


def test_a_pod_pending_with_no_reason_is_a_busy_cluster_and_retried_for_free() -> None:
    """A scheduler, Job controller or node that did not get to the pod in time is the
    infrastructure's fault: the attempt is retried without spending `retries`."""
    pod = image_pull_backoff()
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    verdict = pending_verdict(view(pod), JOB, 15)
    assert verdict.infrastructure
    assert verdict.message.startswith("did not start within 15s: Pending (")
    assert "busy cluster" in verdict.message


def test_no_pod_for_the_job_is_a_busy_cluster_too() -> None:
    verdict = pending_verdict(None, JOB, 300)
    assert verdict.infrastructure
    assert verdict.message.startswith(
        f"did not start within 300s: no pod was created for Job {JOB}"
    )


def test_running() -> None:
    v = view(running())
    assert v.phase == "Running"
    assert v.running
    assert not v.terminated
    assert v.started_at == parse_time(STARTED)
    assert v.finished_at is None
    assert pending_problem(v) is None
    assert end_reason(v) is None
    assert not v.deleted


def test_completed_with_exit_0_and_a_termination_message() -> None:
    v = view(completed())
    assert v.phase == "Succeeded"
    assert v.terminated
    assert not v.running
    assert v.exit_code == 0
    assert v.reason == "Completed"
    assert v.termination_message == RESULT
    assert v.started_at == parse_time(STARTED)
    assert v.finished_at == parse_time(FINISHED)
    assert end_reason(v) is None
    assert not is_infrastructure_failure(v)


def test_error_exit_3() -> None:
    v = view(error_exit_3())
    assert v.phase == "Failed"
    assert v.terminated
    assert v.exit_code == 3
    assert v.reason == "Error"
    assert v.termination_message == LOG_TAIL  # FallbackToLogsOnError: the log's tail
    assert end_reason(v) is None  # the job's own output explains it
    assert not is_infrastructure_failure(v)


def test_a_container_seen_terminated_before_the_pod_phase_moves_is_terminated() -> None:
    pod = running()
    pod["status"]["containerStatuses"][0]["state"] = terminated(0, "Completed", RESULT)
    v = view(pod)
    assert v.phase == "Running"
    assert v.terminated
    assert not v.running


def test_oom_killed_mentions_the_memory_limit() -> None:
    v = view(oom_killed())
    assert v.exit_code == 137
    assert v.reason == "OOMKilled"
    assert v.memory_limit == "256Mi"
    message = end_reason(v)
    assert message is not None
    assert "OOMKilled" in message
    assert "256Mi" in message
    assert not is_infrastructure_failure(v)  # the job used too much: its own failure


def test_oom_killed_without_a_limit_still_says_oom() -> None:
    v = view(oom_killed(limit=None))
    assert v.memory_limit is None
    message = end_reason(v)
    assert message is not None
    assert message.startswith("OOMKilled")


def test_evicted_pod_level_reason_without_container_state() -> None:
    v = view(evicted())
    assert v.phase == "Failed"
    assert v.terminated
    assert v.exit_code is None
    assert v.reason == "Evicted"
    assert v.message == EVICTION
    assert is_infrastructure_failure(v)
    message = end_reason(v)
    assert message is not None
    assert message.startswith("pod Evicted: The node was low on resource: memory")


def test_evicted_with_a_container_reported_lost_is_still_an_eviction() -> None:
    v = view(evicted_container_unknown())
    assert v.terminated
    assert v.exit_code == 137
    assert v.reason == "Evicted"
    assert is_infrastructure_failure(v)
    message = end_reason(v)
    assert message is not None
    assert "Evicted" in message
    assert "low on resource: memory" in message


def test_a_disruption_target_condition_marks_an_infrastructure_failure() -> None:
    v = view(disrupted_without_reason())
    assert is_infrastructure_failure(v)
    message = end_reason(v)
    assert message is not None
    assert "TerminationByKubelet" in message
    assert "low on resource: memory" in message


def test_a_disruption_of_a_pod_that_completed_is_not_a_failure_reason() -> None:
    pod = completed()
    pod["status"]["conditions"].insert(
        0,
        {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
        },
    )
    v = view(pod)
    assert v.exit_code == 0
    assert v.phase == "Succeeded"


@pytest.mark.parametrize("reason", ["NodeLost", "Preempting", "Shutdown", "Terminated"])
def test_other_pod_level_infrastructure_reasons(reason: str) -> None:
    pod = evicted()
    pod["status"]["reason"] = reason
    pod["status"]["message"] = f"pod {reason.lower()}"
    v = view(pod)
    assert is_infrastructure_failure(v)
    assert end_reason(v) == f"pod {reason}: pod {reason.lower()}"


def test_a_failed_pod_without_a_container_exit_is_an_infrastructure_failure() -> None:
    pod = evicted()
    del pod["status"]["reason"]
    del pod["status"]["message"]
    v = view(pod)
    assert is_infrastructure_failure(v)
    assert end_reason(v) == "pod failed without a container exit: unknown"


def test_a_pod_deadline_is_reported_as_a_timeout() -> None:
    pod = evicted()
    pod["status"]["reason"] = "DeadlineExceeded"
    pod["status"]["message"] = "Pod was active on the node longer than the specified deadline"
    v = view(pod)
    message = end_reason(v)
    assert message is not None
    assert "activeDeadlineSeconds" in message


def test_a_pod_deadline_wins_over_the_killed_containers_reason() -> None:
    pod = error_exit_3()
    pod["status"]["reason"] = "DeadlineExceeded"
    pod["status"]["message"] = "Pod was active on the node longer than the specified deadline"
    pod["status"]["containerStatuses"] = [container_status(terminated(137, "Error"), started=True)]
    v = view(pod)
    assert v.exit_code == 137
    assert v.reason == "DeadlineExceeded"
    message = end_reason(v)
    assert message is not None
    assert "activeDeadlineSeconds" in message


def test_deletion_timestamp_marks_the_pod_deleted() -> None:
    v = view(being_deleted())
    assert v.deleted
    assert v.running  # still running until the grace period ends


def test_deleted_after_sigterm_is_terminated_and_deleted() -> None:
    v = view(deleted_after_sigterm())
    assert v.deleted
    assert v.terminated
    assert v.exit_code == 143


def test_last_state_is_used_when_the_current_state_is_empty() -> None:
    pod = error_exit_3()
    status = pod["status"]["containerStatuses"][0]
    status["lastState"], status["state"] = status["state"], {}
    v = view(pod)
    assert v.exit_code == 3


def test_the_worker_container_is_found_by_name_beside_an_injected_sidecar() -> None:
    """A service mesh injects a proxy; the kubelet lists container statuses by name, so
    `istio-proxy` comes before `main` and is still running after the worker has ended."""
    pod = completed()
    pod["spec"]["containers"].append(
        {
            "name": "istio-proxy",
            "image": "docker.io/istio/proxyv2:1.22.0",
            "resources": {"limits": {"memory": "1Gi"}},
        }
    )
    proxy = container_status({"running": {"startedAt": STARTED}}, started=True)
    proxy.update(name="istio-proxy", image="docker.io/istio/proxyv2:1.22.0", ready=True)
    pod["status"]["phase"] = "Running"
    pod["status"]["containerStatuses"].insert(0, proxy)
    v = view(pod)
    assert v.terminated
    assert v.exit_code == 0
    assert v.termination_message == RESULT
    assert v.memory_limit == "256Mi"


# --- pods that are not Shoal's ---------------------------------------------------------------


def test_a_pod_without_shoal_labels_is_none() -> None:
    pod = running()
    pod["metadata"]["labels"] = {"job-name": JOB, "controller-uid": JOB_UID}
    assert read_pod(pod) is None


@pytest.mark.parametrize(
    "label", ["shoal.dev/node", "shoal.dev/item", "shoal.dev/attempt", "shoal.dev/workflow-uid"]
)
def test_a_pod_missing_any_routing_label_is_none(label: str) -> None:
    pod = running()
    del pod["metadata"]["labels"][label]
    assert read_pod(pod) is None


@pytest.mark.parametrize(("label", "value"), [("shoal.dev/item", "x"), ("shoal.dev/attempt", "")])
def test_a_pod_with_a_malformed_number_label_is_none(label: str, value: str) -> None:
    pod = running()
    pod["metadata"]["labels"][label] = value
    assert read_pod(pod) is None


def test_a_pod_without_metadata_is_none() -> None:
    assert read_pod({}) is None
    assert read_pod({"metadata": {"labels": None}}) is None


def test_read_pod_does_not_change_its_input() -> None:
    for fixture in (pending_unschedulable, running, completed, oom_killed, evicted):
        pod = fixture()
        before = copy.deepcopy(pod)
        read_pod(pod)
        assert pod == before
