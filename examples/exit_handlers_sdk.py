"""examples/exit-handlers.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from jobs import explode

from shoal.sdk import Workflow

workflow = Workflow("exit-handlers", image="ghcr.io/shoal-dev/worker:0.1.0", on_exit="notify")
workflow.job("intentional-fail", explode, reason="failing on purpose")
workflow.job(
    "notify",
    "shoal.echo",
    status="${{ workflow.status }}",
    failed="${{ workflow.failures.map(f, f.node) }}",
    verdict="${{ workflow.status == 'Succeeded' ? 'celebrate' : 'cry' }}",
)

if __name__ == "__main__":
    workflow.main()
