"""examples/suspend.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from shoal.sdk import Workflow

workflow = Workflow("suspend", image="ghcr.io/shoal-dev/worker:0.1.0")
build = workflow.job("build", "shoal.echo", artifact="app-1.2.3")
approve = workflow.gate("approve", timeout_seconds=3, default="approve").after(build)
workflow.job(
    "release",
    "shoal.echo",
    released="${{ nodes.build.outputs.artifact }}",
    approvedBy="${{ nodes.approve.outputs.timedOut ? 'timeout' : nodes.approve.outputs.by }}",
).after(build, approve)
workflow.job("rollback", "shoal.echo", rolledBack=True).after(approve).set(run_policy="onFailure")

if __name__ == "__main__":
    workflow.main()
