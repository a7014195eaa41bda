"""examples/synchronization-mutex.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from shoal.sdk import Mutex, Synchronization, Workflow

workflow = Workflow(
    "synchronization-mutex",
    image="ghcr.io/shoal-dev/worker:0.1.0",
    synchronization=Synchronization(mutexes=[Mutex(name="deploy")]),
)
for table in ("users", "orders", "items"):
    workflow.job(f"migrate-{table}", "shoal.echo", table=table).set(
        synchronization=Synchronization(mutexes=[Mutex(name="db")])
    )

if __name__ == "__main__":
    workflow.main()
