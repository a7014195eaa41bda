"""`captureStdout` on the operator path: a pod's stdout becomes `outputs.result` (issue 19)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.conftest import create_workflow, wait_workflow
from tests.cluster.test_operator import workflow

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]


def test_a_pods_stdout_is_its_result_and_flows_downstream(k8s_api: Any, namespace: str) -> None:
    nodes = [
        {
            "name": "count",
            "command": ["sh", "-c", "echo '3 regions'; echo done"],
            "captureStdout": True,
        },
        {
            "name": "report",
            "dependsOn": ["count"],
            "command": ["echo", "got ${{ nodes.count.outputs.result }}"],
            "captureStdout": True,
        },
        {"name": "quiet", "command": ["echo", "only a log line"]},
    ]
    create_workflow(k8s_api, namespace, workflow("capture", *nodes))
    body = wait_workflow(k8s_api, namespace, "capture", timeout=120)["status"]

    assert body["phase"] == "Succeeded", body
    assert body["nodes"]["count"]["outputs"] == {"result": "3 regions\ndone"}
    assert body["nodes"]["report"]["outputs"] == {"result": "got 3 regions\ndone"}
    assert not body["nodes"]["quiet"].get("outputs")
