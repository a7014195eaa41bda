"""examples/artifacts.yaml written with the Python SDK (same manifest, same run)."""

from __future__ import annotations

from jobs import check_row, summarize, write_dataset

from shoal.api.workflow import ArtifactGC, ArtifactsSpec
from shoal.sdk import Workflow

workflow = Workflow(
    "artifacts",
    image="ghcr.io/shoal-dev/worker:0.1.0",
    parameters={"megabytes": 8, "rows": 200, "sampleEvery": 50},
    parallelism=20,
    artifacts=ArtifactsSpec(gc=ArtifactGC.ON_DELETION, offload_bytes=512),
)
params = workflow.params
extract = workflow.job("extract", write_dataset, megabytes=params["megabytes"], rows=params["rows"])
check = workflow.job(
    "check",
    check_row,
    id=extract.outputs["ids"].item,
    dataset=extract.outputs["dataset"],
    sample_every=params["sampleEvery"],
)
workflow.job("report", summarize, scores=check.outputs["score"], reads=check.outputs["read"])

if __name__ == "__main__":
    workflow.main()
