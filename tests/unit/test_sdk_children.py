"""Child workflows in the Python SDK: `Workflow.child` builds what
examples/child-workflow.yaml says, its outputs are referenced by child node name."""

from __future__ import annotations

from shoal.manifests import load_file
from shoal.sdk import Workflow
from tests.local.conftest import EXAMPLES

IMAGE = "ghcr.io/shoal-dev/worker:0.1.0"


def test_the_child_workflow_example_built_in_python_is_the_yaml_one() -> None:
    inner = Workflow("inner", image=IMAGE, parameters={"region": "nowhere"})
    inner.job("count", "shoal.echo", region=inner.params["region"], rows=42)
    wf = Workflow("child-workflow", image=IMAGE)
    pick = wf.job("pick", "shoal.echo", region="eu-west")
    report = wf.child("report-per-region", inner, region=pick.outputs["region"])
    count = report.outputs["count"]
    wf.job("publish", "shoal.echo", published=count["rows"], region=count["region"])
    assert wf.build() == load_file(EXAMPLES / "child-workflow.yaml")[0].resource
    assert wf.validate().order == ("pick", "report-per-region", "publish")
