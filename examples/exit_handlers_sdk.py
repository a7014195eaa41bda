"""examples/exit-handlers.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

import sys

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
    if "--run" in sys.argv[1:]:
        result = workflow.run_local(quiet=False)
        print(result.phase)
        sys.exit(result.exit_code)
    sys.stdout.write(workflow.to_yaml())
