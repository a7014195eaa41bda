"""A workflow built with the SDK is submitted to the real control plane and watched to its end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from shoal.sdk import Workflow, submit
from tests.cluster.conftest import REPO, as_run_result, get_workflow
from tests.local.test_examples import IN_A_CLUSTER
from tests.unit.test_sdk_examples import load_sdk_templates, load_sdk_workflow

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("shoal_operator", "operator_log")]


def hello() -> Workflow:
    sys.path.insert(0, str(REPO / "examples"))
    try:
        from jobs import greet
    finally:
        sys.path.remove(str(REPO / "examples"))
    wf = Workflow("sdk-hello", image="ghcr.io/shoal-dev/worker:0.1.0", parameters={"name": "world"})
    first = wf.job("hello", greet, name=wf.params["name"])
    wf.job("goodbye", greet, name=wf.params["name"], greeting=f"after {first.outputs['message']}")
    return wf


def test_submit_with_watch_runs_the_workflow_in_the_cluster(
    kubeconfig: Path, namespace: str, k8s_api: Any
) -> None:
    done = submit(
        hello(),
        {"name": "Ada"},
        namespace=namespace,
        watch=True,
        watch_seconds=90,
        poll_seconds=0.2,
        kubeconfig=str(kubeconfig),
    )
    assert done["status"]["phase"] == "Succeeded"
    nodes = done["status"]["nodes"]
    assert nodes["hello"]["outputs"] == {"message": "hello, Ada!"}
    assert nodes["goodbye"]["outputs"] == {"message": "after hello, Ada!, Ada!"}
    stored = get_workflow(k8s_api, namespace, "sdk-hello")
    assert stored["spec"]["parameters"] == {"name": "Ada"}
    assert [n["name"] for n in stored["spec"]["nodes"]] == ["hello", "goodbye"]
    assert stored["spec"]["nodes"][1]["dependsOn"] == ["hello"]


@pytest.mark.parametrize("example", sorted(IN_A_CLUSTER))
def test_each_examples_sdk_twin_submits_and_ends_as_its_yaml_does(
    example: str, kubeconfig: Path, namespace: str
) -> None:
    # The YAML goes through kubectl in test_operator.py; its twin through submit(watch=True),
    # to the same phase and the same outputs (the check each example has).
    phase, check = IN_A_CLUSTER[example]
    for template in load_sdk_templates(example):  # what the workflow refers to, first
        submit(template, namespace=namespace, kubeconfig=str(kubeconfig))
    done = submit(
        load_sdk_workflow(example),
        namespace=namespace,
        watch=True,
        watch_seconds=150,
        poll_seconds=0.2,
        kubeconfig=str(kubeconfig),
    )
    assert done["status"]["phase"] == phase, done["status"]
    check(as_run_result(done))
