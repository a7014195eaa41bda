"""Approval gates in the Python SDK: `Workflow.gate` builds what examples/suspend.yaml
says, and a gate given work of its own is refused naming the node."""

from __future__ import annotations

import pytest

from shoal.core.validation import InvalidWorkflow
from shoal.manifests import load_file
from shoal.sdk import RunPolicy, SdkError, Workflow
from tests.local.conftest import EXAMPLES


def test_the_suspend_example_built_in_python_is_the_yaml_one() -> None:
    wf = Workflow("suspend", image="ghcr.io/shoal-dev/worker:0.1.0")
    build = wf.job("build", "shoal.echo", artifact="app-1.2.3")
    gate = wf.gate("approve", timeout_seconds=3, default="approve").after(build)
    by = "${{ nodes.approve.outputs.timedOut ? 'timeout' : nodes.approve.outputs.by }}"
    wf.job("release", "shoal.echo", released=build.outputs["artifact"], approvedBy=by).after(gate)
    wf.job("rollback", "shoal.echo", rolledBack=True).after(gate).set(
        run_policy=RunPolicy.ON_FAILURE
    )
    assert wf.build() == load_file(EXAMPLES / "suspend.yaml")[0].resource
    assert wf.validate().nodes["approve"].spec.suspend is not None


def test_a_whole_workflow_may_start_suspended() -> None:
    wf = Workflow("held", image="w:1", suspend=True)
    wf.command("a", ["true"])
    assert wf.build().spec.suspend is True


def test_a_gate_with_an_image_of_its_own_is_refused_naming_node_and_field() -> None:
    wf = Workflow("bad", image="w:1")
    wf.gate("approve").set(image="other:1")
    with pytest.raises(InvalidWorkflow) as err:
        wf.validate()
    text = str(err.value)
    assert "approve" in text
    assert "remove `image`" in text


def test_a_gate_default_outside_approve_or_reject_is_refused() -> None:
    wf = Workflow("bad", image="w:1")
    wf.gate("approve", default="maybe")
    with pytest.raises(SdkError, match="approve"):
        wf.build()
