"""examples/catalog.yaml written with the Python SDK (docs/sdk.md).

Rendering `workflow` gives the same manifest as catalog.yaml; run it with
    python examples/catalog_sdk.py            # prints the YAML
    python examples/catalog_sdk.py --run      # runs it locally, like `shoal run`
"""

from __future__ import annotations

from jobs import data_proxy, integration, market_finder, publish

from shoal.sdk import RetryPolicy, RunPolicy, Workflow

workflow = Workflow(
    "catalog-integration",
    image="ghcr.io/shoal-dev/worker:0.1.0",
    parameters={"region": "eu-west", "markets": 4, "flakyMarket": "eu-west-3"},
    parallelism=4,
    active_deadline_seconds=600,
    defaults={"timeoutSeconds": 120, "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
)
params = workflow.params

markets = workflow.job("markets", market_finder, region=params["region"], count=params["markets"])
proxy = workflow.job("data-proxy", data_proxy)
# One pod per market id (`.item`); depends on markets and data-proxy, whose outputs it reads.
integrate = workflow.job(
    "integration",
    integration,
    market=markets.outputs["market_ids"].item,
    endpoint=proxy.outputs["endpoint"],
    flaky_market=params["flakyMarket"],
).set(
    parallelism=2,
    retries=RetryPolicy(limit=2, backoff_seconds=1, factor=2, max_backoff_seconds=10),
)
counts = integrate.outputs["count"]
published = workflow.job("publish", publish, counts=counts).set(when=f"size({counts.expr}) > 0")
workflow.job("alert-empty", publish, counts=[]).set(
    when=f"size({counts.expr}) == 0"  # skipped: markets were found
)
workflow.command(
    "notify",
    ["sh", "-c", 'echo "catalog run finished: ${RESULT}"'],
    env={"RESULT": f"publish {published.phase}"},
    run_policy=RunPolicy.ALWAYS,
)

if __name__ == "__main__":
    workflow.main()
