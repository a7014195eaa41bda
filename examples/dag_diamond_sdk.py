"""examples/dag-diamond.yaml (Argo's dag-diamond, no protocol line) with the Python SDK."""

from __future__ import annotations

from shoal.sdk import Workflow

workflow = Workflow("dag-diamond", image="busybox:1.36")
a = workflow.command("a", ["echo", "A"], capture_stdout=True)
b = workflow.command("b", ["echo", f"B after {a.outputs['result']}"], capture_stdout=True)
c = workflow.command("c", ["echo", f"C after {a.outputs['result']}"], capture_stdout=True)
workflow.command(
    "d",
    ["echo", f"D after {b.outputs['result']} and {c.outputs['result']}"],
    capture_stdout=True,
)

if __name__ == "__main__":
    workflow.main()
