"""examples/sequence.yaml written with the Python SDK (same manifest, same run):
`sequence()` fans a job out over integers (`withSequence` with `itemArg`)."""

from __future__ import annotations

from jobs import greet

from shoal.sdk import Workflow, sequence

workflow = Workflow("sequence", image="ghcr.io/shoal-dev/worker:0.1.0", parameters={"shards": 3})
shards = workflow.job(
    "shards", greet, name=sequence(workflow.params["shards"], format="shard-%02d")
)
report = (
    'echo "@shoal/2:$SHOAL_PROTOCOL_TOKEN '
    '{\\"type\\":\\"output\\",\\"key\\":\\"left\\",\\"value\\":$1}"'
)
workflow.command(
    "countdown",
    ["sh", "-c", report, "countdown"],
    args=["${{ item }}"],
    image="busybox:1.36",
    with_sequence={"start": 3, "end": 1},
).after(shards)

if __name__ == "__main__":
    workflow.main()
