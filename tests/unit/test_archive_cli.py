"""`shoal get` of archived runs and `shoal resubmit`: the parts that need no database.

tests/cluster/test_archive.py runs both commands against a real cluster and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shoal.archive.reader import AttemptRecord, NodeRecord, RunDetail, RunSummary
from shoal.cli import get_command as gc
from shoal.cli.main import main
from shoal.cli.resubmit_command import FROM, FROM_UID, resubmission, validate
from shoal.core.validation import InvalidWorkflow

T0 = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)
SPEC = {
    "image": "w:1",
    "parameters": {"region": "eu-west", "day": "mon"},
    "nodes": [
        {"name": "markets", "job": "m"},
        {
            "name": "each",
            "job": "e",
            "forEach": [1, 2, 3],
            "itemArg": "n",
            "dependsOn": ["markets"],
        },
    ],
}


def detail(status: dict[str, Any] | None) -> RunDetail:
    run = RunSummary(
        uid="u-1",
        namespace="team-a",
        name="nightly",
        phase="Failed",
        progress="2/2",
        message="node 'each' failed",
        created_at=T0,
        started_at=T0.replace(second=1),
        finished_at=T0.replace(second=9),
        labels={"app": "catalog"},
    )
    node = NodeRecord("each", "Failed", 4, 1, "bad item", None, {"total": 3, "failed": 1}, T0, T0)
    return RunDetail(run, SPEC, SPEC["parameters"], None, [node], status, T0.replace(minute=5))


STATUS = {
    "phase": "Failed",
    "progress": "2/2",
    "retries": 1,
    "nodes": {
        "markets": {"phase": "Succeeded", "attempts": 1, "outputs": {"ids": [1, 2, 3]}},
        "each": {
            "phase": "Failed",
            "attempts": 4,
            "items": {"total": 3, "succeeded": 2, "failed": 1},
            "failedItems": [{"index": 1, "message": "bad item"}],
        },
    },
}


def test_an_archived_run_reads_like_a_live_get_and_says_it_is_archived() -> None:
    d = detail(STATUS)
    obj = gc.archived_object(d)
    assert obj["metadata"]["creationTimestamp"] == "2026-03-01T10:00:00Z"
    assert obj["status"] == STATUS
    lines = gc.describe_archived(obj, d)
    assert lines[:3] == [
        "Name:       nightly",
        "Namespace:  team-a",
        "Archived:   yes: the Workflow is gone (uid u-1, last recorded 2026-03-01T10:05:00Z)",
    ]
    assert "Retries:    1" in lines
    assert "  each[1]: bad item" in lines
    assert "  markets.ids = [1, 2, 3]" in lines
    assert gc.archive_note(d)["uid"] == "u-1"


def test_a_run_archived_before_the_status_column_is_rebuilt_from_its_columns() -> None:
    obj = gc.archived_object(detail(None))
    status = obj["status"]
    assert status["phase"] == "Failed"
    assert status["message"] == "node 'each' failed"
    assert status["finishedAt"] == "2026-03-01T10:00:09.000000Z"
    assert status["nodes"]["each"] == {
        "phase": "Failed",
        "attempts": 4,
        "exitCode": 1,
        "message": "bad item",
        "items": {"total": 3, "failed": 1},
        "startedAt": "2026-03-01T10:00:00.000000Z",
        "finishedAt": "2026-03-01T10:00:00.000000Z",
    }
    table = gc.describe_workflow(obj)
    assert any(line.split()[:4] == ["each", "Failed", "4", "1/3"] for line in table)


def attempt(index: int, number: int, phase: str, **extra: Any) -> AttemptRecord:
    fields: dict[str, Any] = {
        "exit_code": 0 if phase == "Succeeded" else 1,
        "message": None,
        "outputs": None,
        "outputs_omitted": None,
        "started_at": T0,
        "finished_at": T0.replace(second=2, microsecond=500_000),
    }
    fields.update(extra)
    return AttemptRecord("each", index, number, phase, **fields)


def test_node_view_lists_every_attempt_of_every_item() -> None:
    obj = gc.archived_object(detail(STATUS))
    attempts = [
        attempt(0, 1, "Succeeded"),
        attempt(1, 1, "Failed", message="boom\ntraceback"),
        attempt(1, 2, "Failed", message="bad item"),
    ]
    lines = gc.describe_node(obj, "each", attempts, more=True, archived=True)
    assert lines[:3] == [
        "Workflow:   nightly in team-a (archived)",
        "Node:       each (fan-out)",
        "Phase:      Failed",
    ]
    assert "Items:      3/3 (1 failed)" in lines
    head = lines.index("") + 1
    assert lines[head].split() == [
        "ITEM",
        "ATTEMPT",
        "PHASE",
        "STARTED",
        "DURATION",
        "EXIT",
        "MESSAGE",
    ]
    assert lines[head + 1].split() == ["0", "1", "Succeeded", "2026-03-01T10:00:00Z", "2.5s", "0"]
    assert lines[head + 2].split()[-3:] == ["1", "boom", "…"]
    assert lines[head + 3].split()[:3] == ["1", "2", "Failed"]
    assert lines[head + 4].startswith("(the first 3 attempts; --limit N shows more")


def test_one_items_attempts_show_their_outputs() -> None:
    obj = gc.archived_object(detail(STATUS))
    attempts = [
        attempt(2, 1, "Failed"),
        attempt(2, 2, "Succeeded", outputs={"count": 5}),
        attempt(2, 3, "Succeeded", outputs_omitted="outputs of 70 KiB are too large"),
    ]
    lines = gc.describe_node(obj, "each", attempts)
    out = lines[lines.index("Attempt outputs:") + 1 :]
    assert out == ["  each[2]#2.count = 5", "  each[2]#3: (outputs of 70 KiB are too large)"]
    assert gc.attempt_json(attempts[1]) == {
        "item": 2,
        "attempt": 2,
        "retry": 0,
        "phase": "Succeeded",
        "exitCode": 0,
        "outputs": {"count": 5},
        "startedAt": "2026-03-01T10:00:00.000000Z",
        "finishedAt": "2026-03-01T10:00:02.500000Z",
    }


def test_attempts_of_a_later_retry_round_say_so() -> None:
    obj = gc.archived_object(detail(STATUS))
    attempts = [attempt(1, 1, "Failed"), attempt(1, 1, "Succeeded", retry=1, outputs={"n": 1})]
    lines = gc.describe_node(obj, "each", attempts, archived=True)
    rows = [line for line in lines if line.startswith("1 ")]
    assert [row.split()[:4] for row in rows] == [
        ["1", "1", "Failed", "2026-03-01T10:00:00Z"],
        ["1", "1", "(retry", "1)"],
    ]
    assert "  each[1]#1 (retry 1).n = 1" in lines


def test_node_view_without_an_archive_shows_the_status_only() -> None:
    obj = gc.archived_object(detail(STATUS))
    lines = gc.describe_node(obj, "markets", None)
    assert "ITEM" not in "\n".join(lines)
    assert lines[-2:] == ["Outputs:", "  markets.ids = [1, 2, 3]"]


def test_get_flag_mistakes_exit_2_before_any_connection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = str(tmp_path / "no-kubeconfig")
    assert main(["get", "wf", "--item", "1", "--kubeconfig", nowhere]) == 2
    assert "--item and --failed need --node NODE" in capsys.readouterr().err
    assert main(["get", "wf", "--node", "a", "--limit", "0", "--kubeconfig", nowhere]) == 2


# -- resubmit -------------------------------------------------------------------------


def source() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "nightly",
            "namespace": "team-a",
            "uid": "u-1",
            "labels": {"app": "catalog", "shoal.dev/cron-workflow": "nightly-cron"},
            "annotations": {"shoal.dev/last-handled-configuration": "{}"},
            "resourceVersion": "9",
        },
        "spec": {**SPEC, "stop": True},
        "status": STATUS,
    }


def test_resubmission_copies_the_spec_with_overrides_and_says_where_it_came_from() -> None:
    body = resubmission(source(), {"day": "tue", "extra": [1]})
    assert body["metadata"] == {
        "namespace": "team-a",
        "generateName": "nightly-",
        "labels": {"app": "catalog", FROM: "nightly"},
        "annotations": {FROM: "team-a/nightly", FROM_UID: "u-1"},
    }
    assert body["spec"]["parameters"] == {"region": "eu-west", "day": "tue", "extra": [1]}
    assert "stop" not in body["spec"]
    assert body["spec"]["nodes"] == SPEC["nodes"]
    assert "status" not in body
    assert source()["spec"]["parameters"] == SPEC["parameters"]  # the source is not changed


def test_resubmission_names() -> None:
    assert resubmission(source(), {}, new_name="again")["metadata"]["name"] == "again"
    named = resubmission(source(), {}, generate_name="rerun-")["metadata"]
    assert named["generateName"] == "rerun-"
    long = source()
    long["metadata"]["name"] = "n" * 70
    meta = resubmission(long, {})["metadata"]
    assert FROM not in meta["labels"]  # too long for a label value; the annotation says it
    assert meta["annotations"][FROM] == "team-a/" + "n" * 70


def test_resubmission_is_validated_like_a_submission() -> None:
    body = resubmission(source(), {})
    validate(body, {}, "workflow team-a/nightly")
    body["spec"]["nodes"][1]["dependsOn"] = ["nope"]
    with pytest.raises(InvalidWorkflow) as err:
        validate(body, {}, "workflow team-a/nightly")
    assert "node 'each': dependsOn: unknown dependency 'nope'" in err.value.problems[0].describe(
        err.value.source
    )
