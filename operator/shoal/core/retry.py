"""Retrying a finished workflow: which nodes run again, and the status change that reopens
it (pure; the CLI today, a REST API tomorrow, send the patch).

A retry keeps what succeeded and runs the rest again from the same inputs: the operator
sees the reopened status, rebuilds its state from it (`Succeeded` nodes keep their
outputs) and plans the reset nodes as if they never ran. A reset fan-out keeps its
succeeded items too (`succeededItems` and the aggregated `outputs` stay in its entry,
`core/kept_items` restores them) unless an ancestor runs again, which may change what
its items are given.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from shoal.api.workflow import NodePhase, NodeStatus, RunPolicy, WorkflowPhase, WorkflowStatus
from shoal.core.resolved_spec import run_spec
from shoal.core.status_reader import read_status
from shoal.core.timestamps import format_rfc3339

__all__ = [
    "RETRYABLE_PHASES",
    "clear_stop_patch",
    "items_kept",
    "items_to_keep",
    "node_order",
    "nodes_to_reset",
    "nodes_to_retry",
    "reopen_patch",
    "retry_patch",
]

RETRYABLE_PHASES = frozenset({WorkflowPhase.FAILED, WorkflowPhase.STOPPED})
"""Only a run that ended without succeeding can be retried."""

_RUN_AGAIN = frozenset({NodePhase.FAILED, NodePhase.OMITTED, NodePhase.RUNNING})
_KEPT_FIELDS = frozenset({"outputs", "succeededItems"})
"""What a reset fan-out's entry keeps for the items that are not run again."""


def clear_stop_patch(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The spec patch a retry sends first so the reopened run is not stopped again (a
    Stopped run was stopped by `spec.stop` or `spec.terminate`); None when neither is set."""
    if not (spec.get("stop") or spec.get("terminate")):
        return None
    return {"spec": {"stop": False, "terminate": False}}


def nodes_to_retry(
    status: WorkflowStatus,
    order: Sequence[str],
    run_policies: Mapping[str, RunPolicy | str | None],
) -> list[str]:
    """The nodes a retry runs again, in `order`: Failed and Omitted ones, onFailure nodes
    that were Skipped (what failed may now succeed, so they are decided again), and any
    left Running. Succeeded nodes, and nodes Skipped by their condition, are kept."""
    chosen = []
    for name in order:
        node = status.nodes.get(name)
        if node is None or "phase" not in node.model_fields_set:
            continue
        if node.phase in _RUN_AGAIN or (
            node.phase is NodePhase.SKIPPED and run_policies.get(name) == RunPolicy.ON_FAILURE.value
        ):
            chosen.append(name)
    return chosen


def items_to_keep(
    status: WorkflowStatus, reset: Collection[str], deps: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """The reset fan-outs that keep items, with the items they keep (`succeededItems`):
    those whose outputs are in the status and none of whose ancestors (`deps`: each node's
    `dependsOn`) runs again."""
    kept: dict[str, str] = {}
    for name in reset:
        node = status.nodes.get(name)
        if node is None or not node.succeeded_items or node.outputs_omitted is not None:
            continue
        if not _ancestors(name, deps) & set(reset):
            kept[name] = node.succeeded_items
    return kept


def _ancestors(name: str, deps: Mapping[str, Sequence[str]]) -> set[str]:
    found: set[str] = set()
    todo = list(deps.get(name, ()))
    while todo:
        dep = todo.pop()
        if dep not in found:
            found.add(dep)
            todo.extend(deps.get(dep, ()))
    return found


def retry_patch(
    status: WorkflowStatus,
    order: Sequence[str],
    reset: Collection[str],
    now: datetime,
    resource_version: str | None = None,
    deps: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The merge patch that reopens the workflow: `reset` nodes back to Pending (every
    other field they had removed, but the items a fan-out keeps: `items_to_keep`, known
    only given `deps`), phase Running, a fresh start time (so that activeDeadlineSeconds
    bounds the retried run), the progress of the kept nodes, and `retries` counted up.
    With `resource_version` the patch applies only to the object it was computed from."""
    done = sum(
        1
        for name in order
        if name not in reset and name in status.nodes and status.nodes[name].phase.finished
    )
    keeping = items_to_keep(status, reset, deps) if deps is not None else {}
    patch_nodes: dict[str, Any] = {}
    for name in reset:
        node = status.nodes.get(name)
        written = [] if node is None else _wire_fields(node)
        if name in keeping:
            written = [key for key in written if key not in _KEPT_FIELDS]
        patch_nodes[name] = {**{key: None for key in written}, "phase": NodePhase.PENDING.value}
    patch: dict[str, Any] = {
        "status": {
            "phase": WorkflowPhase.RUNNING.value,
            "message": None,
            "finishedAt": None,
            "startedAt": format_rfc3339(now, fraction=True),
            "progress": f"{done}/{len(order)}",
            "retries": (status.retries or 0) + 1,
            "nodes": patch_nodes,
        }
    }
    if resource_version is not None:
        patch = {"metadata": {"resourceVersion": resource_version}, **patch}
    return patch


def _wire_fields(node: NodeStatus) -> list[str]:
    """The camelCase names of the fields a stored entry holds, in declaration order."""
    held = node.model_fields_set
    return [info.alias or name for name, info in NodeStatus.model_fields.items() if name in held]


# --- the same transition read from a Workflow object as the API server returns it ---------
# (what `shoal retry` and the REST API's retry both hold)


def _spec_nodes(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    nodes = run_spec(body).get("nodes") or []  # a run from a template: its resolved nodes
    return [n for n in nodes if isinstance(n, dict) and n.get("name")]


def node_order(body: Mapping[str, Any]) -> list[str]:
    """Node names in manifest order, then any the status has that the spec lacks."""
    names = [str(n["name"]) for n in _spec_nodes(body)]
    extra = [n for n in ((body.get("status") or {}).get("nodes") or {}) if n not in names]
    return names + sorted(extra)


def _deps(body: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each node's `dependsOn` (what decides whether a reset fan-out keeps its items)."""
    return {
        str(n["name"]): [str(d) for d in n.get("dependsOn") or [] if isinstance(d, str)]
        for n in _spec_nodes(body)
    }


def nodes_to_reset(body: Mapping[str, Any]) -> list[str]:
    """`nodes_to_retry` of a Workflow object."""
    policies = {str(n["name"]): n.get("runPolicy") for n in _spec_nodes(body)}
    return nodes_to_retry(read_status(body.get("status")), node_order(body), policies)


def items_kept(body: Mapping[str, Any], reset: Collection[str]) -> dict[str, str]:
    """`items_to_keep` of a Workflow object: the reset fan-outs that keep items."""
    return items_to_keep(read_status(body.get("status")), reset, _deps(body))


def reopen_patch(body: Mapping[str, Any], reset: Collection[str], now: datetime) -> dict[str, Any]:
    """`retry_patch` of a Workflow object, valid only for the version it was read at."""
    version = body["metadata"]["resourceVersion"]
    status = read_status(body.get("status"))
    return retry_patch(status, node_order(body), reset, now, version, deps=_deps(body))
