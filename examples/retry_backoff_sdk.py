"""examples/retry-backoff.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from jobs import flaky

from shoal.api.workflow import RetryOn
from shoal.sdk import RetryPolicy, Workflow

workflow = Workflow("retry-backoff", image="ghcr.io/shoal-dev/worker:0.1.0")
workflow.job("flaky", flaky, succeed_on_attempt=3).set(
    retries=RetryPolicy(
        limit=10,
        backoff_seconds=0.2,
        factor=2,
        retry_policy=RetryOn.ON_FAILURE,
        expression="lastRetry.exitCode != 2",
        max_duration_seconds=60,
    )
)

if __name__ == "__main__":
    workflow.main()
