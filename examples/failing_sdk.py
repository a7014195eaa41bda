"""examples/failing.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from jobs import explode

from shoal.sdk import RunPolicy, Workflow

workflow = Workflow("failing", image="ghcr.io/shoal-dev/worker:0.1.0")
boom = workflow.job("boom", explode, reason="the database is on fire")
workflow.job("downstream", "shoal.noop").after(boom)
workflow.job("cleanup", "shoal.echo", cleaned=True).after(boom).set(run_policy=RunPolicy.ON_FAILURE)

if __name__ == "__main__":
    workflow.main()
