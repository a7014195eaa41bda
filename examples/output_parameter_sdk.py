"""examples/output-parameter.yaml (Argo's output-parameter, no protocol line) with the
Python SDK: an output read from a file the command wrote."""

from __future__ import annotations

from shoal.api.file_outputs import OutputFile
from shoal.sdk import Workflow

workflow = Workflow("output-parameter", image="ghcr.io/shoal-dev/worker:0.1.0")
generate = workflow.command(
    "generate-parameter",
    ["sh", "-c", 'sleep 0.1; echo -n "hello world" > /tmp/hello_world-$SHOAL_WORKFLOW_UID.txt'],
    outputs={"hello_param": OutputFile(path="/tmp/hello_world-$(SHOAL_WORKFLOW_UID).txt")},
)
workflow.command(
    "consume-parameter",
    ["echo", "${{ nodes.generate_parameter.outputs.hello_param }}"],
    capture_stdout=True,
).after(generate)

if __name__ == "__main__":
    workflow.main()
