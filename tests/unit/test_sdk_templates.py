"""Templates in the SDK: a template built in code is the template YAML gives, a node or a
Workflow refers to one, and validation resolves references from the templates given."""

from __future__ import annotations

import pytest

from shoal.core.templates import TemplatesNeeded
from shoal.core.validation import InvalidWorkflow
from shoal.manifests import load_file
from shoal.sdk import SdkError, Workflow, WorkflowTemplate, to_dict
from tests.local.conftest import EXAMPLES

SHOUT = ["sh", "-c", 'echo "$0" | tr a-z A-Z']


def greeting() -> WorkflowTemplate:
    t = WorkflowTemplate(
        "greeting", image="busybox:1.36", parameters={"who": "world", "punctuation": "!"}
    )
    compose = t.command(
        "compose",
        ["sh", "-c", 'echo "hello, $0$1"', t.params["who"], t.params["punctuation"]],
        capture_stdout=True,
    )
    t.command("shout", [*SHOUT, compose.outputs["result"]], capture_stdout=True)
    return t


def greetings(template: WorkflowTemplate) -> Workflow:
    wf = Workflow("greetings", image="busybox:1.36", parameters={"team": "shoal"})
    team = wf.template("team", template, who=wf.params["team"])
    quiet = wf.template("quiet", template, node="compose", who="ada", punctuation=".")
    summary = ["sh", "-c", 'echo "$0 / $1"', "${{ nodes['team-shout'].outputs.result }}"]
    wf.command("summary", [*summary, quiet.outputs["result"]], capture_stdout=True).after(team)
    return wf


def test_the_example_in_code_is_the_example_manifest() -> None:
    template_doc, workflow_doc = (m.document.raw for m in load_file(EXAMPLES / "templates.yaml"))  # type: ignore[union-attr]
    template = greeting()
    assert to_dict(template) == template_doc
    assert to_dict(greetings(template)) == workflow_doc


def test_validation_resolves_references_from_the_templates_given() -> None:
    template = greeting()
    wf = greetings(template)
    with pytest.raises(TemplatesNeeded):
        wf.validate()
    assert wf.validate(templates=[template]).order == (
        "team-compose",
        "quiet",
        "team-shout",
        "summary",
    )
    bad = Workflow("bad", image="x")
    bad.template("one", template, node="composer")
    with pytest.raises(InvalidWorkflow, match="WorkflowTemplate 'greeting' has no node 'composer'"):
        bad.validate(templates=[template])


def test_a_whole_workflow_from_a_template_and_a_template_that_does_not_run() -> None:
    wf = Workflow(
        "from-template", workflow_template_ref={"name": "greeting"}, parameters={"who": "sdk"}
    )
    assert to_dict(wf)["spec"] == {
        "parameters": {"who": "sdk"},
        "workflowTemplateRef": {"name": "greeting"},
    }
    assert wf.validate(templates=[greeting()]).params == {"who": "sdk", "punctuation": "!"}
    with pytest.raises(SdkError, match="a template does not run by itself"):
        greeting().run_local()
