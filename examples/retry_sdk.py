"""examples/retry.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from jobs import flaky

from shoal.sdk import RetryPolicy, Workflow

workflow = Workflow("retry", image="ghcr.io/shoal-dev/worker:0.1.0")
flaky_step = workflow.job("flaky", flaky, succeed_on_attempt=2).set(
    retries=RetryPolicy(limit=3, backoff_seconds=0.5, factor=2)
)
workflow.job("after", "shoal.echo", flaky_attempt=flaky_step.outputs["attempt"])

if __name__ == "__main__":
    workflow.main()
