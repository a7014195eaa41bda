"""The spec fields the operator acts on for any Workflow (shoal.kube.workflow_body).

What a user relies on: `spec.stop: true` stops a run, a finished Workflow is deleted
`ttlSecondsAfterFinished` after it finished (an invalid one too), and only
`artifacts.gc: OnDeletion` makes a deletion collect the run's artifacts.
"""

from __future__ import annotations

from typing import Any

import pytest

from shoal.api.workflow import ArtifactGC
from shoal.kube.workflow_body import WorkflowControls, deletion_due

FINISHED = {"phase": "Succeeded", "finishedAt": "2026-12-07T08:00:00Z"}
FINISHED_AT = 1_796_630_400.0  # 2026-12-07T08:00:00Z


def body(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"metadata": {"name": "w", "namespace": "ns"}, "spec": spec}
    if status is not None:
        doc["status"] = status
    return doc


VALID = {"nodes": [{"name": "a", "job": "j"}]}
INVALID = {"nodes": [{"name": "a"}], "unknownField": 1}


@pytest.mark.parametrize("spec", [VALID, INVALID], ids=["valid", "invalid"])
def test_stop_is_read_whatever_the_rest_of_the_spec_holds(spec: dict[str, Any]) -> None:
    assert WorkflowControls.of(body({**spec, "stop": True})).stop is True
    assert WorkflowControls.of(body(spec)).stop is False


@pytest.mark.parametrize("spec", [VALID, INVALID], ids=["valid", "invalid"])
def test_a_finished_workflow_is_due_for_deletion_its_ttl_after_it_finished(
    spec: dict[str, Any],
) -> None:
    due = deletion_due(body({**spec, "ttlSecondsAfterFinished": 90}, FINISHED))
    assert due == FINISHED_AT + 90


@pytest.mark.parametrize(
    ("ttl", "status"),
    [(None, FINISHED), (90, {"phase": "Running"}), (90, None)],
    ids=["no-ttl", "not-finished", "no-status"],
)
def test_no_deletion_without_a_ttl_or_before_the_run_finished(
    ttl: int | None, status: dict[str, Any] | None
) -> None:
    spec = dict(VALID) if ttl is None else {**VALID, "ttlSecondsAfterFinished": ttl}
    assert deletion_due(body(spec, status)) is None


def test_a_zero_ttl_deletes_as_soon_as_the_run_finished() -> None:
    assert deletion_due(body({**VALID, "ttlSecondsAfterFinished": 0}, FINISHED)) == FINISHED_AT


@pytest.mark.parametrize(
    ("gc", "collects"),
    [("OnDeletion", True), ("OnSuccess", False), ("Keep", False), (None, False)],
)
def test_only_gc_on_deletion_collects_the_artifacts_when_deleted(
    gc: str | None, collects: bool
) -> None:
    spec = dict(VALID) if gc is None else {**VALID, "artifacts": {"gc": gc}}
    controls = WorkflowControls.of(body(spec))
    assert controls.collects_on_deletion is collects
    if gc is not None:
        assert controls.artifacts is not None
        assert controls.artifacts.gc is ArtifactGC(gc)


def test_invalid_artifact_settings_collect_nothing_but_keep_stop_and_ttl() -> None:
    spec = {**VALID, "stop": True, "ttlSecondsAfterFinished": 5}
    spec["artifacts"] = {"gc": "OnDeletion", "offloadBytes": 1}  # below the minimum
    controls = WorkflowControls.of(body(spec))
    assert controls.artifacts is None
    assert not controls.collects_on_deletion
    assert (controls.stop, controls.ttl_seconds_after_finished) == (True, 5)


def test_a_value_the_schema_refuses_reads_as_its_default_instead_of_raising() -> None:
    controls = WorkflowControls.of(body({**VALID, "ttlSecondsAfterFinished": "soon"}))
    assert controls == WorkflowControls()
    assert WorkflowControls.of({"metadata": {}}) == WorkflowControls()
