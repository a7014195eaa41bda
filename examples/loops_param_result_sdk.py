"""examples/loops-param-result.yaml (Argo's loops-param-result, no protocol line) with
the Python SDK: a step prints a JSON list, the next fans out over it."""

from __future__ import annotations

from shoal.sdk import Workflow

workflow = Workflow("loops-param-result", image="python:3.12-alpine")
numbers = workflow.command(
    "gen-number-list",
    ["python3", "-c", "import json; print(json.dumps([i for i in range(3, 6)]))"],
    capture_stdout=True,
)
workflow.command(
    "sleep-n",
    ["sh", "-c", 'echo "sleeping for $0 ms"; sleep "0.0$0"; echo "$0"'],
    args=["${{ item }}"],
    for_each="${{ nodes.gen_number_list.outputs.result }}",
    capture_stdout=True,
).after(numbers)

if __name__ == "__main__":
    workflow.main()
