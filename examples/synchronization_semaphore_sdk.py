"""examples/synchronization-semaphore.yaml written with the Python SDK (same manifest,
same run)."""

from __future__ import annotations

from shoal.sdk import Semaphore, Synchronization, Workflow

CRAWLER = [Semaphore(name="crawler", limit=2)]

workflow = Workflow("synchronization-semaphore", image="ghcr.io/shoal-dev/worker:0.1.0")
workflow.job("seed", "shoal.echo", site="seed").set(
    synchronization=Synchronization(semaphores=CRAWLER, priority=10)
)
for site in "abcd":
    workflow.job(f"crawl-{site}", "shoal.echo", site=site).set(
        synchronization=Synchronization(semaphores=CRAWLER)
    )

if __name__ == "__main__":
    workflow.main()
