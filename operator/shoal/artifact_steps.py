"""The artifact-store steps both executors carry out for the planner.

The planner asks for two things it cannot do itself (it does no I/O): read an offloaded
list that a `forEach` yields (`LoadItems`), and store a fan-out's aggregated outputs when
they are too large for the status (`StoreOutputs`). Each step runs the blocking store
calls in a worker thread and turns the outcome, success or failure, into the observation
the planner waits for; a failure never escapes as an exception, it becomes the node's
message. The blocking halves (`read_items`, `outputs_writer`) are what the local executor
runs on a thread of its own; the operator awaits `load_items` and `store_outputs`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from shoal.api.limits import MAX_FAN_OUT_ITEMS
from shoal.core.compiled import CompiledWorkflow
from shoal.core.decisions import LoadItems, StoreOutputs
from shoal.core.state import ItemsLoaded, OutputsStored, RunState
from shoal_worker.artifacts import ArtifactError, ArtifactStore, artifact_key
from shoal_worker.offload import ValueRef, iter_items, store_list

log = logging.getLogger("shoal.artifacts")
StoreFactory = Callable[[], ArtifactStore]
"""Opens the workflow's store on first use (it may read a Secret or build a client)."""
CONTROL_PLANE_ATTEMPT = 0
"""The attempt segment of keys the control plane writes (jobs' attempts start at 1)."""


def aggregate_key(wf: CompiledWorkflow, node: str, name: str) -> str:
    """Where a fan-out's aggregated output `name` is stored."""
    meta = wf.meta
    return artifact_key(
        meta.namespace,
        meta.name,
        meta.uid,
        node,
        None,
        CONTROL_PLANE_ATTEMPT,
        f"output.{name}",
    )


def run_prefix(namespace: str, name: str, uid: str) -> str:
    """The key prefix under which everything of one run lives (what GC deletes)."""
    key = artifact_key(namespace, name, uid, "-", None, CONTROL_PLANE_ATTEMPT, "-")
    return "/".join(key.split("/")[:3]) + "/"  # namespace/workflow/uid/


def workflow_prefix(wf: CompiledWorkflow) -> str:
    return run_prefix(wf.meta.namespace, wf.meta.name, wf.meta.uid)


def _describe(err: BaseException) -> str:
    if isinstance(err, ArtifactError | ValueError):
        return str(err)
    return f"{type(err).__name__}: {err}"


def read_items(store: StoreFactory, decision: LoadItems) -> ItemsLoaded:
    """Read the list a `forEach` refers to (streamed, parsed line by line); blocking, and
    never raising: a failure is the result's error."""
    try:
        ref = ValueRef.parse(decision.reference)
    except Exception as err:
        return ItemsLoaded("", error=_describe(err))
    if ref is None:  # the planner only asks for value references
        return ItemsLoaded("", error="not a value reference")
    started = time.monotonic()
    try:
        # One past the limit is enough for the planner to refuse the fan-out.
        items = list(itertools.islice(iter_items(store(), ref), MAX_FAN_OUT_ITEMS + 1))
    except Exception as err:
        return ItemsLoaded(ref.ref.key, error=_describe(err))
    log.info(
        "%s: read %d items (%d bytes) from %s in %.2fs",
        decision.node,
        len(items),
        ref.ref.size,
        ref.ref.key,
        time.monotonic() - started,
    )
    return ItemsLoaded(ref.ref.key, items)


async def load_items(store: StoreFactory, decision: LoadItems) -> ItemsLoaded:
    """`read_items` on a worker thread of the running asyncio loop."""
    import asyncio

    return await asyncio.to_thread(read_items, store, decision)


def outputs_writer(
    store: StoreFactory, wf: CompiledWorkflow, state: RunState, decision: StoreOutputs
) -> Callable[[], OutputsStored]:
    """Write each large aggregated output of a fan-out as one JSON Lines artifact: the
    values are taken now, on the loop (a thread must not read state the loop may change);
    the returned call writes them, blocking."""
    ns = state.nodes[decision.node]
    columns = {
        name: [ns.item_outputs.get(i, {}).get(name) for i in range(ns.total)]
        for name in decision.keys
    }

    def write() -> OutputsStored:
        try:
            opened = store()
            references: dict[str, Any] = {
                name: store_list(opened, aggregate_key(wf, decision.node, name), values).as_output()
                for name, values in columns.items()
            }
        except Exception as err:
            return OutputsStored(decision.node, error=_describe(err))
        return OutputsStored(decision.node, references)

    return write


async def store_outputs(
    store: StoreFactory, wf: CompiledWorkflow, state: RunState, decision: StoreOutputs
) -> OutputsStored:
    """`outputs_writer`'s write on a worker thread of the running asyncio loop."""
    import asyncio

    return await asyncio.to_thread(outputs_writer(store, wf, state, decision))
