"""The retry transition (shoal.core.retry) on the typed status.

The first two tests are the CLI's (tests/unit/test_cli_cluster.py) with the same
assertions: the CLI keeps its own copy until it is rewired to these functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shoal.core.retry import RETRYABLE_PHASES, nodes_to_retry, retry_patch
from shoal.core.status_reader import read_status

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

SPEC_NODES: list[dict[str, Any]] = [
    {"name": "first", "job": "greet"},
    {"name": "boom", "job": "explode", "dependsOn": ["first"]},
    {"name": "down", "job": "noop", "dependsOn": ["boom"]},
    {"name": "cleanup", "job": "noop", "dependsOn": ["boom"], "runPolicy": "onFailure"},
    {"name": "alarm", "job": "noop", "dependsOn": ["first"], "runPolicy": "onFailure"},
    {"name": "maybe", "job": "noop", "dependsOn": ["first"], "when": "false"},
]
ORDER = [str(n["name"]) for n in SPEC_NODES]
POLICIES = {str(n["name"]): n.get("runPolicy") for n in SPEC_NODES}

FAILED: dict[str, Any] = {
    "phase": "Failed",
    "progress": "6/6",
    "message": "node 'boom' failed: the database is on fire",
    "startedAt": "2026-01-01T00:00:01.000000Z",
    "finishedAt": "2026-01-01T00:00:03.500000Z",
    "nodes": {
        "first": {"phase": "Succeeded", "attempts": 1, "outputs": {"message": "hi"}},
        "boom": {"phase": "Failed", "attempts": 3, "exitCode": 1, "message": "on fire"},
        "down": {"phase": "Omitted", "message": "not run: dependency 'boom' Failed"},
        "cleanup": {"phase": "Succeeded", "attempts": 1, "outputs": {"cleaned": True}},
        "alarm": {"phase": "Skipped"},
        "maybe": {"phase": "Skipped", "message": "when: false"},
    },
}


def test_retry_reruns_failed_omitted_and_skipped_on_failure_nodes_only() -> None:
    assert nodes_to_retry(read_status(FAILED), ORDER, POLICIES) == ["boom", "down", "alarm"]


def test_retry_patch_resets_those_nodes_and_reopens_the_workflow() -> None:
    patch = retry_patch(read_status(FAILED), ORDER, ["boom", "down", "alarm"], NOW, "42")
    assert patch["metadata"] == {"resourceVersion": "42"}
    status = patch["status"]
    assert status["phase"] == "Running"
    assert status["message"] is None
    assert status["finishedAt"] is None
    assert status["startedAt"] == "2026-01-02T03:04:05.000000Z"
    assert status["retries"] == 1
    assert status["progress"] == "3/6"
    assert status["nodes"] == {
        "boom": {"phase": "Pending", "attempts": None, "exitCode": None, "message": None},
        "down": {"phase": "Pending", "message": None},
        "alarm": {"phase": "Pending"},
    }
    again = retry_patch(read_status({**FAILED, "retries": 2}), ORDER, [], NOW, "42")
    assert again["status"]["retries"] == 3


def test_a_node_left_running_is_run_again_and_one_without_a_phase_is_not() -> None:
    status = read_status({"phase": "Stopped", "nodes": {"first": {"phase": "Running"}, "boom": {}}})
    assert nodes_to_retry(status, ORDER, POLICIES) == ["first"]


def test_without_a_resource_version_the_patch_is_unconditional() -> None:
    patch = retry_patch(read_status(FAILED), ORDER, ["boom"], NOW)
    assert "metadata" not in patch
    assert patch["status"]["progress"] == "5/6"


def test_only_failed_and_stopped_runs_are_retryable() -> None:
    assert sorted(RETRYABLE_PHASES) == ["Failed", "Stopped"]


def test_a_retry_clears_a_stop_and_a_terminate_only_when_set() -> None:
    from shoal.core.retry import clear_stop_patch

    assert clear_stop_patch({}) is None
    assert clear_stop_patch({"stop": False}) is None
    cleared = {"spec": {"stop": False, "terminate": False}}
    assert clear_stop_patch({"stop": True}) == cleared
    assert clear_stop_patch({"terminate": True}) == cleared
