"""examples/hello.yaml written with the Python SDK: `python examples/hello_sdk.py` prints
the same manifest, `--run` runs it locally (tests/local/test_sdk_examples.py checks both)."""

from __future__ import annotations

from jobs import greet

from shoal.sdk import Workflow

workflow = Workflow("hello", image="ghcr.io/shoal-dev/worker:0.1.0", parameters={"name": "world"})
name = workflow.params["name"]
hello = workflow.job("hello", greet, name=name)
workflow.job("goodbye", greet, name=name, greeting=f"after '{hello.outputs['message']}', goodbye")

if __name__ == "__main__":
    workflow.main()
