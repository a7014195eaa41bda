"""The command line that runs a command node with `outputs` read from files.

Pure: both executors call `wrap` with the way they start the worker (`shoal-worker` in
a pod, this interpreter's `-m shoal_worker.runner` in a local run). The worker's `exec`
runs the command, then reads each declared file (docs/workflows.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shoal.api.limits import MAX_OUTPUT_FILE_BYTES

if TYPE_CHECKING:  # a node or its view (shoal/fast_run.py): no pydantic at run time
    from shoal.api.workflow import Node

__all__ = ["POD_WORKER", "wrap"]

POD_WORKER = ("shoal-worker",)
"""The worker as a pod runs it: the worker image's entry on `PATH`."""


def wrap(node: Node, argv: list[str], worker: tuple[str, ...] | list[str]) -> list[str]:
    """`argv` (the command and its args), under `worker exec` when `node` declares files
    as outputs; unchanged otherwise."""
    if not node.outputs:
        return argv
    options = ["--max-bytes", str(MAX_OUTPUT_FILE_BYTES)]
    for name, output in node.outputs.items():
        options += ["--output", f"{name}={output.path}"]
    return [*worker, "exec", *options, "--", *argv]
