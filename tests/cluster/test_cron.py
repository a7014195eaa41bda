"""CronWorkflows on a real control plane, with a seconds-level schedule.

Every wait is a watch with a deadline; each test lasts a few scheduled periods.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.conftest import GROUP, VERSION, custom, start_operator, wait_until
from tests.support.plugin import Kubectl
from tests.unit.test_cron_docs import examples

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]
EVERY_2S = "*/2 * * * * *"  # six fields: seconds first
LABEL = "shoal.dev/cron-workflow"
Runs = dict[str, dict[str, Any]]


def cron(name: str, node: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": name},
        "spec": {
            "schedule": EVERY_2S,
            "parameters": {"who": "cron"},
            "workflowSpec": {"image": "ghcr.io/shoal-dev/worker:0.1.0", "nodes": [node]},
            **spec,
        },
    }


NOOP = {"name": "a", "job": "shoal.noop"}
SLEEP = {"name": "a", "command": ["sleep", "300"]}


def create_cron(k8s_api: Any, namespace: str, doc: dict[str, Any]) -> None:
    custom(k8s_api).create_namespaced_custom_object(GROUP, VERSION, namespace, "cronworkflows", doc)


def get_cron(k8s_api: Any, namespace: str, name: str) -> dict[str, Any]:
    body: dict[str, Any] = custom(k8s_api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, "cronworkflows", name
    )
    return body


def watch_runs(
    k8s_api: Any,
    namespace: str,
    name: str,
    until: Callable[[Runs], bool],
    timeout: float,
) -> Runs:
    """Watch a CronWorkflow's runs until `until(runs by name)` holds; fail at the deadline."""
    from kubernetes import watch

    runs: Runs = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stream = watch.Watch().stream(
            custom(k8s_api).list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "workflows",
            label_selector=f"{LABEL}={name}",
            timeout_seconds=max(1, int(deadline - time.monotonic())),
        )
        for event in stream:
            obj = event["object"]
            if event["type"] == "DELETED":
                runs.pop(obj["metadata"]["name"], None)
            else:
                runs[obj["metadata"]["name"]] = obj
            if until(runs):
                return runs
    raise AssertionError(f"runs of {name} after {timeout}s: {sorted(runs)}")


def runs_during(k8s_api: Any, namespace: str, name: str, seconds: float) -> Runs:
    """Every run seen within a fixed window (for "nothing more happens" checks)."""
    seen: Runs = {}

    def record(runs: Runs) -> bool:
        seen.update(runs)
        return False

    with contextlib.suppress(AssertionError):
        watch_runs(k8s_api, namespace, name, record, seconds)
    return seen


def phase(run: dict[str, Any]) -> str | None:
    return (run.get("status") or {}).get("phase")


def test_fires_on_time_named_after_the_scheduled_time(k8s_api: Any, namespace: str) -> None:
    create_cron(k8s_api, namespace, cron("tick", NOOP))
    runs = watch_runs(k8s_api, namespace, "tick", lambda r: len(r) >= 2, timeout=10)
    for name, run in runs.items():
        epoch = int(name.removeprefix("tick-"))
        assert epoch % 2 == 0
        created = datetime.fromisoformat(
            run["metadata"]["creationTimestamp"].replace("Z", "+00:00")
        )
        assert 0 <= created.timestamp() - epoch <= 1.5  # creationTimestamp has 1 s resolution
        params = run["spec"]["parameters"]
        assert params["who"] == "cron"
        assert params["scheduledTime"] == run["metadata"]["annotations"]["shoal.dev/scheduled-time"]
        assert (
            datetime.fromisoformat(params["scheduledTime"].replace("Z", "+00:00")).timestamp()
            == epoch
        )
        assert run["metadata"]["ownerReferences"][0]["kind"] == "CronWorkflow"
    status = wait_until(
        lambda: (
            (get_cron(k8s_api, namespace, "tick").get("status") or {}).get("fireCount", 0) >= 2
            and get_cron(k8s_api, namespace, "tick")["status"]
        ),
        timeout=5,
        what="fireCount >= 2",
    )
    assert status["nextScheduleTime"] > status["lastScheduleTime"]


def test_suspend_stops_firing(k8s_api: Any, namespace: str) -> None:
    create_cron(k8s_api, namespace, cron("pause", NOOP))
    watch_runs(k8s_api, namespace, "pause", lambda r: len(r) >= 1, timeout=6)
    custom(k8s_api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "cronworkflows", "pause", {"spec": {"suspend": True}}
    )
    time_of_suspend = time.time()
    seen = runs_during(k8s_api, namespace, "pause", 5)
    late = [n for n in seen if int(n.removeprefix("pause-")) > time_of_suspend + 1]
    assert late == []


def test_forbid_skips_while_a_run_is_active(k8s_api: Any, namespace: str) -> None:
    create_cron(k8s_api, namespace, cron("single", SLEEP, concurrencyPolicy="Forbid"))
    watch_runs(k8s_api, namespace, "single", lambda r: len(r) >= 1, timeout=6)
    seen = runs_during(k8s_api, namespace, "single", 5)
    assert len(seen) == 1


def test_replace_stops_the_old_run(k8s_api: Any, namespace: str) -> None:
    create_cron(k8s_api, namespace, cron("swap", SLEEP, concurrencyPolicy="Replace"))
    runs = watch_runs(k8s_api, namespace, "swap", lambda r: len(r) >= 2, timeout=8)
    first = min(runs)
    runs = watch_runs(
        k8s_api, namespace, "swap", lambda r: phase(r.get(first, {})) == "Stopped", timeout=15
    )
    assert runs[first]["spec"]["stop"] is True


def test_history_limits_delete_old_runs(k8s_api: Any, namespace: str) -> None:
    doc = cron("keep", NOOP, successfulRunsHistoryLimit=1, failedRunsHistoryLimit=0)
    create_cron(k8s_api, namespace, doc)

    def pruned(runs: Runs) -> bool:
        done = [n for n, r in runs.items() if phase(r) == "Succeeded"]
        return (
            get_cron(k8s_api, namespace, "keep").get("status", {}).get("fireCount", 0) >= 3
            and len(done) <= 1
        )

    watch_runs(k8s_api, namespace, "keep", pruned, timeout=20)


@pytest.mark.parametrize("policy", ["all", "latest"])
def test_own_operator_down_across_scheduled_times_catches_up(
    policy: str, crds: None, kubeconfig: Path, k8s_api: Any, namespace: str, tmp_path: Path
) -> None:
    """The operator is killed for ~6 s (three scheduled times), then catches up per policy."""
    op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")
    try:
        doc = cron("late", NOOP, catchUp={"policy": policy}, startingDeadlineSeconds=60)
        create_cron(k8s_api, namespace, doc)
        watch_runs(k8s_api, namespace, "late", lambda r: len(r) >= 1, timeout=15)
        op.kill()
        before = runs_during(k8s_api, namespace, "late", 1)  # anything still in flight
        last_before = max(epoch(n) for n in before)
        runs_during(k8s_api, namespace, "late", 6)  # down: nothing fires
        restarted = time.time()
        op = start_operator(kubeconfig, namespace, tmp_path / "operator.log")

        def caught_up(r: Runs) -> bool:
            # The catch-up runs may be created after the first new one: wait for them
            # (bounded), rather than judge the first list that shows a new run.
            if max(map(epoch, r)) <= restarted + 2:
                return False
            if policy != "all":
                return True
            seen = sorted(map(epoch, r))
            return seen == list(range(seen[0], seen[-1] + 1, 2))

        runs = watch_runs(k8s_api, namespace, "late", caught_up, timeout=20)
    finally:
        op.stop()
    epochs = sorted(map(epoch, runs))
    if policy == "all":
        assert epochs == list(range(epochs[0], epochs[-1] + 1, 2))  # no gap, none twice
        assert len([e for e in epochs if last_before < e <= restarted]) >= 2
    else:  # only the latest missed time fired, at restart
        assert [e for e in epochs if last_before < e < restarted - 2] == []
        assert epochs == sorted(set(epochs))


def epoch(run_name: str) -> int:
    return int(run_name.rsplit("-", 1)[1])


def test_docs_examples_apply_and_fire(kubectl: Kubectl, k8s_api: Any, namespace: str) -> None:
    """docs/cron.md's examples pass the CRD schema; the seconds-level one fires.

    Poll examples only go through a server-side dry run: their URLs are not reachable
    from a test (test_cron_poll runs them against a local server)."""
    for doc in examples():
        dry = ["--dry-run=server"] if "poll" in doc["spec"] else []
        kubectl("apply", *dry, "-f", "-", namespace=namespace, stdin=yaml.safe_dump(doc))
    watch_runs(k8s_api, namespace, "heartbeat", lambda r: len(r) >= 1, timeout=6)
    wait_until(
        lambda: (get_cron(k8s_api, namespace, "heartbeat").get("status") or {}).get(
            "nextScheduleTime"
        ),
        timeout=5,
        what="heartbeat's nextScheduleTime",
    )
    shown = kubectl("get", "cronworkflows", namespace=namespace).stdout
    assert "heartbeat" in shown
    assert "*/2 * * * * *" in shown
    # A future time in a `date` column prints as <invalid>; NEXT shows the time itself.
    (row,) = [line for line in shown.splitlines() if line.startswith("heartbeat ")]
    assert "<invalid>" not in row
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row)
