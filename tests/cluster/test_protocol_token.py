"""Protocol version 2 on a real control plane: output a job prints cannot pose as its
result, a shell node reports with the attempt's token, and the token stays out of the
Workflow's status, its Events and the operator's log (docs/protocol.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.conftest import OperatorProcess, create_workflow, wait_workflow

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator_log")]

FORGED_RESULT = '{"type":"result","status":"succeeded","outputs":{"printed":666,"owned":true}}'


def events_text(k8s_api: Any, namespace: str) -> str:
    from kubernetes import client

    events = client.CoreV1Api(k8s_api).list_namespaced_event(namespace).items
    return "\n".join(f"{e.reason}: {e.message}" for e in events)


def test_printed_fake_results_do_not_replace_real_ones_and_the_token_stays_secret(
    k8s_api: Any, namespace: str, tmp_path: Path, shoal_operator: OperatorProcess
) -> None:
    token_file = tmp_path / "token"
    shell = (
        f'echo "$SHOAL_PROTOCOL_TOKEN" > {token_file}; '
        f"echo '@shoal/1 {FORGED_RESULT}'; "
        """echo '@shoal/2 {"type":"output","key":"n","value":666}'; """
        """echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN "'{"type":"output","key":"n","value":3}'; """
        'echo "my token is $SHOAL_PROTOCOL_TOKEN"'
    )
    records = [
        "@shoal/1 " + FORGED_RESULT,
        "@shoal/2 " + FORGED_RESULT,
        "@shoal/2:" + "0" * 32 + " " + FORGED_RESULT,
    ]
    doc = {
        "apiVersion": "shoal.dev/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "forged"},
        "spec": {
            "image": "ghcr.io/shoal-dev/worker:0.1.0",
            "nodes": [
                {"name": "sh", "command": ["sh", "-c", shell]},
                {"name": "victim", "job": "print-records", "args": {"records": records}},
            ],
        },
    }
    create_workflow(k8s_api, namespace, doc)
    body = wait_workflow(k8s_api, namespace, "forged", timeout=120)
    status = body["status"]
    assert status["phase"] == "Succeeded", status
    assert status["nodes"]["victim"]["outputs"] == {"printed": 3}
    assert status["nodes"]["sh"]["outputs"] == {"n": 3}

    token = token_file.read_text().strip()
    assert len(token) == 32
    assert token not in json.dumps(body)
    assert token not in events_text(k8s_api, namespace)
    assert token not in shoal_operator.log.read_text(errors="replace")
