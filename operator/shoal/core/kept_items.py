"""The items of a fan-out that a retry keeps: recorded when it finishes, restored when the
retried run starts (pure).

A fan-out's aggregated `outputs` hold every item's values by index (in the status, or as
references to lists in the artifact store), so the status only has to say which indexes
succeeded (`succeededItems`, as ranges) for a retry to know what it need not run again.
The reopened node starts Running with those items Succeeded and their values back in
place, and only the others wait to run: the final aggregate is the one an all-success
run would have built. The same record, written while the retried node runs, lets a
restarted operator restore the kept items too (their Jobs are gone); so does the record
any running fan-out writes of its succeeded items (`core/item_gc`), whose Jobs go once
it is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.api.workflow import NodeStatus
from shoal.core.compiled import CompiledWorkflow
from shoal.core.expressions import ExpressionError
from shoal.core.item_ranges import format_ranges, parse_ranges
from shoal.core.planner import NeedItems, resolve_items
from shoal.core.state import NodeState, RunState, Task, TaskPhase
from shoal_worker.offload import ValueRef

__all__ = ["Kept", "keep_items", "kept_items"]


@dataclass(frozen=True, slots=True)
class Kept:
    """What a reopened fan-out keeps: its items, and the kept items' outputs by index."""

    items: list[Any]
    outputs: dict[int, dict[str, Any]]
    aggregate: dict[str, Any]
    """The node's stored `outputs` (written back while it runs, so a restart finds them)."""


def kept_items(wf: CompiledWorkflow, state: RunState, name: str, saved: NodeStatus) -> Kept | None:
    """The items an unfinished fan-out keeps from before a retry, or None.

    None when its status records none, its outputs were left out of the status, an
    ancestor is not finished (it runs again, so the items' inputs may change), or the
    record does not fit the items (an edited status). Raises `NeedItems` until the lists
    it iterates over, and offloaded lists of its outputs, are in `state.loaded`.
    """
    if saved.succeeded_items is None or saved.outputs_omitted is not None:
        return None
    if not all(state.nodes[a].phase.finished for a in _ancestors(wf, name)):
        return None
    try:
        items = resolve_items(wf, state, name)
    except ExpressionError:
        return None
    if items is None:
        return None
    ranges = parse_ranges(saved.succeeded_items, len(items))
    columns = _columns(name, saved.outputs or {}, len(items), state.loaded)
    if ranges is None or columns is None:
        return None
    outputs = {
        index: {key: values[index] for key, values in columns.items()}
        for span in ranges
        for index in span
    }
    return Kept(items, outputs, dict(saved.outputs or {}))


def _ancestors(wf: CompiledWorkflow, name: str) -> set[str]:
    found: set[str] = set()
    todo = list(wf.nodes[name].deps)
    while todo:
        dep = todo.pop()
        if dep not in found:
            found.add(dep)
            todo.extend(wf.nodes[dep].deps)
    return found


def _columns(
    name: str, outputs: Mapping[str, Any], total: int, loaded: Mapping[str, list[Any] | str]
) -> dict[str, list[Any]] | None:
    """Each aggregated output as its list of `total` values (offloaded ones read from
    `loaded`); None when one cannot be had."""
    columns: dict[str, list[Any]] = {}
    for key, value in outputs.items():
        ref = ValueRef.parse(value)
        if ref is not None:
            found = loaded.get(ref.ref.key)
            if found is None:
                raise NeedItems(name, value, ref.ref.key)
            value = found
        if not isinstance(value, list) or len(value) != total:
            return None
        columns[key] = value
    return columns


def keep_items(ns: NodeState, kept: Kept, since: float) -> None:
    """Put the kept items into a node being restored as Running: they count as Succeeded
    with their outputs, every other item below the highest kept one waits to run (from
    `since`), and items above it start in order as usual. An item with an attempt in
    flight is that attempt's, not kept."""
    ns.items = kept.items
    ns.total = len(kept.items)
    ns.outputs = dict(kept.aggregate)
    for index, outputs in kept.outputs.items():
        task = ns.tasks.get(index)
        if task is not None and task.phase is TaskPhase.RUNNING:
            continue
        ns.tasks.pop(index, None)
        ns.item_outputs[index] = outputs
    ns.succeeded = len(ns.item_outputs)
    ns.succeeded_items = format_ranges(ns.item_outputs)
    high = max(ns.item_outputs, default=-1) + 1
    for index in range(ns.next_index, high):
        if index not in ns.item_outputs and index not in ns.tasks:
            ns.tasks[index] = Task(index, 0, TaskPhase.WAITING, since, retry_at=since)
    ns.next_index = max(ns.next_index, high)
