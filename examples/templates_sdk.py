"""examples/templates.yaml written with the Python SDK (same manifests, same run): the
WorkflowTemplate `greeting` and the Workflow that reuses its whole DAG and one node."""

from __future__ import annotations

from shoal.sdk import Workflow, WorkflowTemplate

greeting = WorkflowTemplate(
    "greeting", image="busybox:1.36", parameters={"who": "world", "punctuation": "!"}
)
compose = greeting.command(
    "compose",
    ["sh", "-c", 'echo "hello, $0$1"', greeting.params["who"], greeting.params["punctuation"]],
    capture_stdout=True,
)
greeting.command(
    "shout", ["sh", "-c", 'echo "$0" | tr a-z A-Z', compose.outputs["result"]], capture_stdout=True
)
templates = [greeting]
"""What the workflow refers to (written before it in the manifest file)."""

workflow = Workflow("greetings", image="busybox:1.36", parameters={"team": "shoal"})
team = workflow.template("team", greeting, who=workflow.params["team"])
quiet = workflow.template("quiet", greeting, node="compose", who="ada", punctuation=".")
workflow.command(
    "summary",
    [
        "sh",
        "-c",
        'echo "$0 / $1"',
        "${{ nodes['team-shout'].outputs.result }}",
        quiet.outputs["result"],
    ],
    capture_stdout=True,
).after(team)

if __name__ == "__main__":
    workflow.main(templates=templates)
