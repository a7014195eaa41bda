"""examples/child-workflow.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from shoal.sdk import Workflow

report = Workflow(
    "report", image="ghcr.io/shoal-dev/worker:0.1.0", parameters={"region": "nowhere"}
)
report.job("count", "shoal.echo", region="${{ params.region }}", rows=42)

workflow = Workflow("child-workflow", image="ghcr.io/shoal-dev/worker:0.1.0")
pick = workflow.job("pick", "shoal.echo", region="eu-west")
child = workflow.child(
    "report-per-region", report, region="${{ nodes.pick.outputs.region }}"
).after(pick)
workflow.job(
    "publish",
    "shoal.echo",
    published='${{ nodes["report-per-region"].outputs.count.rows }}',
    region='${{ nodes["report-per-region"].outputs.count.region }}',
).after(child)

if __name__ == "__main__":
    workflow.main()
