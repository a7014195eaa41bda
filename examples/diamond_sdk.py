"""examples/diamond.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from jobs import add, multiply

from shoal.sdk import Workflow

workflow = Workflow("diamond", image="ghcr.io/shoal-dev/worker:0.1.0", parameters={"x": 3})
start = workflow.job("start", "shoal.echo", x=workflow.params["x"])
left = workflow.job("left", add, a=start.outputs["x"], b=1)
right = workflow.job("right", add, a=start.outputs["x"], b=2)
workflow.job("join", multiply, a=left.outputs["sum"], b=right.outputs["sum"])

if __name__ == "__main__":
    workflow.main()
