"""`shoal trigger`: a CronWorkflow run now; a repeated idempotency key never makes two."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import REPO, custom, wait_workflow

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]

CRON = {
    "apiVersion": "shoal.dev/v1alpha1",
    "kind": "CronWorkflow",
    "metadata": {"name": "nightly"},
    "spec": {
        "schedule": "0 0 1 1 *",
        "suspend": True,  # only manual runs in this test
        "workflowSpec": {
            "parameters": {"greeting": "hi"},
            "nodes": [
                {
                    "name": "say",
                    "command": [
                        "sh",
                        "-c",
                        'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN '
                        '{\\"type\\":\\"output\\",\\"key\\":\\"said\\",'
                        '\\"value\\":\\"$1\\"}"',
                        "say",
                        "${{ params.greeting }}",
                    ],
                }
            ],
        },
    },
}


def trigger(kubeconfig: Path, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shoal.cli.main", "trigger", "nightly", "-n", namespace, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )


def runs(k8s_api: Any, namespace: str) -> list[str]:
    items = custom(k8s_api).list_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "workflows"
    )["items"]
    return sorted(item["metadata"]["name"] for item in items)


def test_trigger_with_a_key_runs_once_and_without_a_key_every_time(
    k8s_api: Any, kubeconfig: Path, namespace: str
) -> None:
    custom(k8s_api).create_namespaced_custom_object(
        "shoal.dev", "v1alpha1", namespace, "cronworkflows", CRON
    )
    first = trigger(kubeconfig, namespace, "--idempotency-key", "deploy-42", "-p", "greeting=hello")
    again = trigger(kubeconfig, namespace, "--idempotency-key", "deploy-42", "-p", "greeting=hello")
    assert first.returncode == 0, first.stderr
    assert again.returncode == 0, again.stderr
    assert "already triggered" in again.stdout
    keyed = runs(k8s_api, namespace)
    assert len(keyed) == 1
    assert keyed[0].startswith("nightly-manual-")
    body = wait_workflow(k8s_api, namespace, keyed[0])
    assert body["status"]["phase"] == "Succeeded", body["status"]
    assert body["status"]["nodes"]["say"]["outputs"] == {"said": "hello"}
    assert "scheduledTime" in body["spec"]["parameters"]

    for _ in range(2):
        assert trigger(kubeconfig, namespace).returncode == 0
    assert len(runs(k8s_api, namespace)) == 3

    bad = trigger(kubeconfig, namespace, "-p", "nope=1")
    assert bad.returncode == 2
    assert "unknown parameter 'nope'" in bad.stderr
    assert len(runs(k8s_api, namespace)) == 3

    missing = subprocess.run(
        [sys.executable, "-m", "shoal.cli.main", "trigger", "absent", "-n", namespace],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
    )
    assert missing.returncode == 1
    assert "cronworkflow 'absent' not found" in missing.stderr
