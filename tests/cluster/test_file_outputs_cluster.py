"""Outputs from files on the operator path: the pod's `shoal-worker exec` reads the file
its command wrote, and a missing file fails the node by name (issue 19)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.cluster.conftest import create_workflow, wait_workflow
from tests.cluster.test_operator import workflow

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]


def test_a_file_a_pod_wrote_is_its_output_and_a_missing_one_fails(
    k8s_api: Any, namespace: str
) -> None:
    # The node agent's pods share the host's filesystem (docs/testing.md): a path of its
    # own keeps this run's file apart from any other run's.
    out = f"/tmp/shoal-file-output-{uuid.uuid4().hex}.txt"
    nodes = [
        {
            "name": "generate",
            "command": ["sh", "-c", f"echo 'hello world' > {out}; echo 'a log line'"],
            "outputs": {"message": {"path": out}},
        },
        {
            "name": "consume",
            "dependsOn": ["generate"],
            "command": ["echo", "got ${{ nodes.generate.outputs.message }}"],
            "captureStdout": True,
        },
        {
            "name": "forgetful",
            "command": ["true"],
            "outputs": {"report": {"path": f"{out}.missing"}},
        },
    ]
    create_workflow(k8s_api, namespace, workflow("file-outputs", *nodes))
    body = wait_workflow(k8s_api, namespace, "file-outputs", timeout=120)["status"]

    assert body["nodes"]["generate"]["outputs"] == {"message": "hello world"}, body
    assert body["nodes"]["consume"]["outputs"] == {"result": "got hello world"}
    assert body["nodes"]["forgetful"]["phase"] == "Failed"
    assert (
        f"output 'report' from {out}.missing: no such file" in body["nodes"]["forgetful"]["message"]
    )
    assert body["phase"] == "Failed"
