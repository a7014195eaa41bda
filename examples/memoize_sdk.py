"""examples/memoize.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from shoal.sdk import Memoize, Workflow

workflow = Workflow(
    "memoize", image="ghcr.io/shoal-dev/worker:0.1.0", parameters={"message": "hello world"}
)
generate = workflow.job("generate", "shoal.echo", message=workflow.params["message"]).set(
    memoize=Memoize(key=f"echo-{workflow.params['message']}", max_age="10m")
)
workflow.job("print", "shoal.echo", said=generate.outputs["message"])

if __name__ == "__main__":
    workflow.main()
