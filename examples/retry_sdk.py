"""examples/retry.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

import sys

from jobs import flaky

from shoal.sdk import RetryPolicy, Workflow

workflow = Workflow("retry", image="ghcr.io/shoal-dev/worker:0.1.0")
flaky_step = workflow.job("flaky", flaky, succeed_on_attempt=2).set(
    retries=RetryPolicy(limit=3, backoff_seconds=0.5, factor=2)
)
workflow.job("after", "shoal.echo", flaky_attempt=flaky_step.outputs["attempt"])

if __name__ == "__main__":
    if "--run" in sys.argv[1:]:
        result = workflow.run_local(quiet=False)
        print(result.phase)
        sys.exit(result.exit_code)
    sys.stdout.write(workflow.to_yaml())
