"""The chained trigger (`after`) on a real control plane.

A downstream CronWorkflow follows the runs of an upstream one: a failed upstream run
fires nothing, a successful one fires exactly one run that receives its outputs. The
restart test makes upstream runs finish while the operator is down (their status is
written by the test, as a runner would) and checks that those fire and earlier ones
do not fire again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import (
    GROUP,
    VERSION,
    create_workflow,
    custom,
    start_operator,
    wait_until,
    wait_workflow,
)
from tests.cluster.test_cron import create_cron, get_cron, runs_during, watch_runs
from tests.cluster.test_cron_poll import list_runs

pytestmark = [pytest.mark.cluster]
IMAGE = "ghcr.io/shoal-dev/worker:0.1.0"


def upstream_cron(k8s_api: Any, namespace: str) -> str:
    """A CronWorkflow that never fires by itself; the test creates its runs. Its uid."""
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "extract"},
        "spec": {
            "schedule": "0 0 1 1 *",
            "suspend": True,
            "workflowSpec": {"nodes": [{"name": "a", "job": "shoal.noop"}]},
        },
    }
    create_cron(k8s_api, namespace, doc)
    uid: str = get_cron(k8s_api, namespace, "extract")["metadata"]["uid"]
    return uid


def upstream_run(name: str, cron_uid: str, script: str) -> dict[str, Any]:
    """A run of `extract` (labelled and owned like the ones it creates)."""
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {
            "name": name,
            "labels": {"shoal.dev/cron-workflow": "extract"},
            "ownerReferences": [
                {
                    "apiVersion": "shoal.dev/v1alpha1",
                    "kind": "CronWorkflow",
                    "name": "extract",
                    "uid": cron_uid,
                }
            ],
        },
        "spec": {"image": IMAGE, "nodes": [{"name": "rows", "command": ["sh", "-c", script]}]},
    }


OUTPUT_ROWS = (
    'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN '
    '{\\"type\\":\\"output\\",\\"key\\":\\"count\\",\\"value\\":42}"'
)

DOWNSTREAM = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "CronWorkflow",
    "metadata": {"name": "load"},
    "spec": {
        "after": {"cronWorkflow": "extract"},
        "workflowSpec": {
            "image": IMAGE,
            "nodes": [
                {
                    "name": "load",
                    "command": [
                        "sh",
                        "-c",
                        'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN '
                        '{\\"type\\":\\"output\\",\\"key\\":\\"got\\",'
                        '\\"value\\":$1}"',
                        "load",
                        "${{ params.upstreamOutputs.rows.count }}",
                    ],
                }
            ],
        },
    },
}


def after_cursor(k8s_api: Any, namespace: str) -> str | None:
    status = get_cron(k8s_api, namespace, "load").get("status") or {}
    cursor: str | None = (status.get("after") or {}).get("cursor")
    return cursor


def keep_failed_runs(cron: dict[str, Any], count: int) -> dict[str, Any]:
    """`cron` with `failedRunsHistoryLimit: count`."""
    return {**cron, "spec": {**cron["spec"], "failedRunsHistoryLimit": count}}


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.usefixtures("shoal_operator", "operator_log")
def test_a_success_upstream_fires_once_with_its_outputs_and_a_failure_does_not(
    k8s_api: Any, namespace: str
) -> None:
    cron_uid = upstream_cron(k8s_api, namespace)
    create_cron(k8s_api, namespace, DOWNSTREAM)

    create_workflow(k8s_api, namespace, upstream_run("extract-bad", cron_uid, "exit 3"))
    bad = wait_workflow(k8s_api, namespace, "extract-bad", timeout=120)
    assert bad["status"]["phase"] == "Failed", bad["status"]
    # The downstream saw it (its cursor reached the failed run's finish) and fired nothing.
    wait_until(
        lambda: (
            (c := after_cursor(k8s_api, namespace))
            and instant(c) >= instant(bad["status"]["finishedAt"])
        ),
        timeout=30,
        what="the downstream's cursor past the failed upstream run",
    )
    assert list_runs(k8s_api, namespace, "load") == []  # a run is created before the status

    create_workflow(k8s_api, namespace, upstream_run("extract-good", cron_uid, OUTPUT_ROWS))
    good = wait_workflow(k8s_api, namespace, "extract-good", timeout=120)
    assert good["status"]["phase"] == "Succeeded", good["status"]
    runs = watch_runs(k8s_api, namespace, "load", lambda r: len(r) >= 1, timeout=30)
    (name,) = runs
    params = runs[name]["spec"]["parameters"]
    assert params["upstreamName"] == "extract-good"
    assert params["upstreamPhase"] == "Succeeded"
    assert params["upstreamOutputs"] == {"rows": {"count": 42}}
    assert (
        runs[name]["metadata"]["annotations"]["shoal.dev/upstream-uid"] == (good["metadata"]["uid"])
    )
    done = wait_workflow(k8s_api, namespace, name, timeout=120)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["nodes"]["load"]["outputs"] == {"got": 42}
    status = get_cron(k8s_api, namespace, "load")["status"]
    assert status["fireCount"] == 1
    assert status["after"]["fired"] == [good["metadata"]["uid"]]


def finish(k8s_api: Any, namespace: str, name: str, phase: str) -> None:
    """Write a finished status, as the upstream's runner would have."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    custom(k8s_api).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        "workflows",
        name,
        {"status": {"phase": phase, "progress": "1/1", "startedAt": now, "finishedAt": now}},
    )


def test_own_operator_restart_fires_for_runs_finished_while_down_and_never_twice(
    crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")
    try:
        cron_uid = upstream_cron(k8s_api, namespace)
        # The runs fired for the two upstream runs finished while the operator was down
        # fail (those runs have no `rows.count` output); with the default failed-runs
        # history of 1 the operator would delete one of them while this test counts them.
        create_cron(k8s_api, namespace, keep_failed_runs(DOWNSTREAM, 5))
        create_workflow(k8s_api, namespace, upstream_run("before", cron_uid, OUTPUT_ROWS))
        wait_workflow(k8s_api, namespace, "before", phases={"Succeeded"}, timeout=120)
        watch_runs(k8s_api, namespace, "load", lambda r: len(r) >= 1, timeout=30)
        op.kill()
        for name in ("while-down-1", "while-down-2"):
            create_workflow(k8s_api, namespace, upstream_run(name, cron_uid, "true"))
            finish(k8s_api, namespace, name, "Succeeded")
        op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")
        runs = watch_runs(k8s_api, namespace, "load", lambda r: len(r) >= 3, timeout=60)
        # Give the restarted operator a full pass over every upstream run: its status lists
        # all three as fired once it has handled them.
        wait_until(
            lambda: (
                len(
                    (get_cron(k8s_api, namespace, "load").get("status") or {})
                    .get("after", {})
                    .get("fired", [])
                )
                == 3
            ),
            timeout=30,
            what="three upstream runs recorded as fired",
        )
        later = runs_during(k8s_api, namespace, "load", 2)
    finally:
        op.stop()
    upstream = sorted(r["spec"]["parameters"]["upstreamName"] for r in runs.values())
    assert upstream == ["before", "while-down-1", "while-down-2"]
    assert set(later) == set(runs)


@pytest.mark.usefixtures("shoal_operator", "operator_log")
def test_the_docs_after_example_fires_after_a_failed_migration(
    k8s_api: Any, namespace: str
) -> None:
    """docs/cron.md's after-migration follows a named Workflow and lists Failed too."""
    from tests.cluster.test_cron_poll import docs_example

    create_cron(k8s_api, namespace, docs_example("after-migration"))
    migration = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "db-migration"},
        "spec": {"image": IMAGE, "nodes": [{"name": "m", "command": ["sh", "-c", "exit 1"]}]},
    }
    create_workflow(k8s_api, namespace, migration)
    runs = watch_runs(k8s_api, namespace, "after-migration", lambda r: len(r) >= 1, timeout=120)
    (run,) = runs.values()
    assert run["spec"]["parameters"]["upstreamName"] == "db-migration"
    assert run["spec"]["parameters"]["upstreamPhase"] == "Failed"
