"""`shoal retry`: re-run what failed in a Failed or Stopped Workflow, keeping the rest.

The retry transition itself (which nodes, and the patch that reopens the run) is the
core's (`shoal.core.retry`), on the typed status; this module reads, patches and waits.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shoal.cli.common import (
    EXIT_OK,
    CliError,
    connection_args,
    get_workflow,
    node_order,
    out,
    phase,
    run_against_cluster,
    watch_to_end,
)
from shoal.core.retry import RETRYABLE_PHASES, clear_stop_patch, nodes_to_reset, reopen_patch
from shoal.core.retry import items_kept as kept_items

if TYPE_CHECKING:
    from shoal.kube.api import KubeApi

__all__ = [
    "REMOVAL_SECONDS",
    "RETRYABLE",
    "configure",
    "kept_items",
    "nodes_to_reset",
    "reopen_patch",
    "retry",
]

RETRYABLE = frozenset(phase.value for phase in RETRYABLE_PHASES)
REMOVAL_SECONDS = 120.0
"""How long `retry` waits for the old Jobs and pods to be deleted, unless --timeout."""
PATCH_ATTEMPTS = 5
"""Conflicting status writes (409) tolerated before giving up."""


def configure(p: argparse.ArgumentParser) -> None:
    """`shoal retry`'s arguments and handler."""
    p.description = (
        "Re-run what failed (Failed and Omitted nodes, and onFailure nodes "
        "that were Skipped) in the same Workflow. Succeeded nodes keep their outputs and "
        "are not run again; so do the succeeded items of a fan-out, unless a node it "
        "depends on runs again."
    )
    p.add_argument("name", help="workflow name")
    p.add_argument(
        "-w", "--watch", action="store_true", help="follow the workflow until it finishes"
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up after this long (exit 1): waiting for the old Jobs to go "
        f"(default {REMOVAL_SECONDS:g}), and watching",
    )
    connection_args(p)
    p.set_defaults(handler=retry)


async def _reopen(api: KubeApi, namespace: str, name: str, reset: list[str]) -> dict[str, Any]:
    """Write the retry patch against the latest state; returns the state it applied to."""
    from shoal.kube.api import ApiError, workflows_path

    path = workflows_path(namespace, name)
    for _ in range(PATCH_ATTEMPTS):
        obj = await get_workflow(api, namespace, name)
        if phase(obj) not in RETRYABLE:
            raise CliError(f"workflow {name} became {phase(obj)} meanwhile; not retried")
        try:
            await api.merge_patch(path + "/status", reopen_patch(obj, reset, datetime.now(UTC)))
            return obj
        except ApiError as err:
            if err.status != 409:
                raise
    raise CliError(f"workflow {name} kept changing; not retried (try again)")


def retry(args: argparse.Namespace) -> int:
    async def run(api: KubeApi, namespace: str) -> int:
        from shoal.kube.api import workflows_path

        name = args.name
        started = time.monotonic()
        deadline = None if args.timeout is None else started + args.timeout
        obj = await get_workflow(api, namespace, name)
        now = phase(obj)
        if now not in RETRYABLE:
            raise CliError(
                f"workflow {name} is {now}: only a Failed or Stopped workflow can be retried"
            )
        reset = nodes_to_reset(obj)
        if not reset:
            raise CliError(f"workflow {name} is {now} but has no failed node to run again")
        if (unstop := clear_stop_patch(obj.get("spec") or {})) is not None:
            await api.merge_patch(workflows_path(namespace, name), unstop)
        removal = started + REMOVAL_SECONDS if deadline is None else deadline
        await _remove_attempts(api, namespace, obj, reset, removal)
        obj = await _reopen(api, namespace, name, reset)
        kept = [n for n in node_order(obj) if n not in reset]
        count = int((obj.get("status") or {}).get("retries") or 0) + 1
        out(
            f"workflow {name}: retry {count}, running again: {', '.join(reset)}"
            + (f"; kept: {', '.join(kept)}" if kept else "")
        )
        for node, items in kept_items(obj, reset).items():
            out(f"  {node}: keeps the outputs of items {items}; the other items run again")
        if not args.watch:
            return EXIT_OK
        remaining = None if deadline is None else max(1.0, deadline - time.monotonic())
        return await watch_to_end(api, namespace, name, remaining)

    return run_against_cluster(args, run)


async def _remove_attempts(
    api: KubeApi, namespace: str, obj: dict[str, Any], nodes: list[str], deadline: float
) -> None:
    """Delete the Jobs (and any stray pods) of `nodes`, and wait until they are gone.

    The retried attempts reuse the deterministic Job names of the first ones, so the old
    Jobs must be gone first; Foreground deletion removes a Job only after its pods.
    """
    from shoal.kube.api import jobs_path, pods_path
    from shoal.kube.listwatch import left_at_deadline
    from shoal.kube.naming import LABEL_NODE, LABEL_WORKFLOW_UID

    selector = f"{LABEL_WORKFLOW_UID}={obj['metadata']['uid']},{LABEL_NODE} in ({','.join(nodes)})"
    for path_of in (jobs_path, pods_path):
        listing = await api.get(path_of(namespace), labelSelector=selector)
        for item in listing.get("items") or []:
            await api.delete(path_of(namespace, item["metadata"]["name"]), propagation="Foreground")
    for path_of, what in ((jobs_path, "Jobs"), (pods_path, "pods")):
        left = await left_at_deadline(api, path_of(namespace), deadline, selector)
        if left:
            raise CliError(
                f"the old {what} of {', '.join(nodes)} were still there at the deadline "
                f"({', '.join(sorted(left))}); nothing was retried: try again, or give it "
                "a longer --timeout"
            )
