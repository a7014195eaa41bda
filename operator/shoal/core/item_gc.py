"""When a running fan-out's finished items may lose their Jobs (pure).

A fan-out item's Job (and its pod) used to be the only record of its outcome until its
node ended, so a 100,000-item node kept 100,000 Jobs in etcd. Instead, while the node
runs, its status entry carries a compact durable record: `succeededItems` (index ranges)
and `outputs` as the partial aggregate (one list per output name, `None` where an item has
not succeeded yet), the same shape a finished fan-out and `shoal retry` use, so a
restarted operator restores those items through `core/kept_items` without their Jobs.

The rule: a succeeded item's Jobs may be deleted once a status write that holds its index
in `succeededItems` has landed (the written document is checked, not the runner's belief).
When the record does not fit (the ranges text past its cap, or the aggregate past
`MAX_STATUS_OUTPUTS_BYTES`), nothing new is recorded and the items' Jobs stay until the
node ends, where `spec.podGC` decides as before. Failed items are never in the record:
their Jobs (and pods, for debugging) stay until the node ends.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shoal.api import limits
from shoal.core.item_ranges import format_ranges, parse_ranges
from shoal.core.sizes import json_size
from shoal.core.state import NodeState

__all__ = [
    "LiveRecord",
    "durable_items",
    "jobs_to_delete",
    "live_fields",
    "live_record",
    "recorded",
]


@dataclass(frozen=True, slots=True)
class LiveRecord:
    """What a running fan-out's status entry records of its succeeded items."""

    outputs: dict[str, list[Any]]
    succeeded_items: str


def live_record(ns: NodeState) -> LiveRecord | None:
    """The record of a running fan-out's succeeded items, or None when there is none or it
    does not fit the status (then the items' Jobs are their record)."""
    if not ns.fan_out or ns.phase.finished or not ns.item_outputs:
        return None
    ranges = format_ranges(ns.item_outputs)
    if ranges is None:
        return None
    keys: dict[str, None] = {}
    for values in ns.item_outputs.values():
        keys.update(dict.fromkeys(values))
    outputs = {key: [ns.item_outputs.get(i, {}).get(key) for i in range(ns.total)] for key in keys}
    if keys and json_size(outputs) > limits.MAX_STATUS_OUTPUTS_BYTES:
        return None
    return LiveRecord(outputs, ranges)


def live_fields(ns: NodeState, fields: dict[str, Any]) -> None:
    """A fan-out's `outputs`/`succeededItems` in the Workflow's status (merge-patched).

    Running: the live record, or neither field when it does not fit, so the last record
    written stays (it only ever grows: Jobs were deleted on its word). Finished: both
    fields explicitly (null when absent), so the final entry replaces a live record.
    """
    if ns.phase.finished:
        fields.setdefault("outputs", None)
        fields.setdefault("succeeded_items", None)
        return
    for key in ("outputs", "outputs_omitted", "succeeded_items"):
        fields.pop(key, None)
    record = live_record(ns)
    if record is not None:
        if record.outputs:
            fields["outputs"] = record.outputs
        fields["succeeded_items"] = record.succeeded_items


def durable_items(node: Mapping[str, Any]) -> list[range]:
    """The item indexes a written status entry (wire form) records as succeeded while its
    node runs; empty when it records none or the entry is not a running fan-out's."""
    counts = node.get("items")
    ranges = node.get("succeededItems")
    if node.get("phase") != "Running" or not isinstance(counts, Mapping):
        return []
    total = counts.get("total")
    if not isinstance(ranges, str) or not isinstance(total, int) or isinstance(total, bool):
        return []
    return parse_ranges(ranges, total) or []


def recorded(spans: list[range], index: int) -> bool:
    """Whether `index` is in `spans` (ascending, as `durable_items` gives them)."""
    at = bisect_right([s.start for s in spans], index) - 1
    return at >= 0 and index in spans[at]


def jobs_to_delete(
    ended: Iterable[tuple[str, int]],
    written_nodes: Mapping[str, Any],
    keep_below: Callable[[str], int | None],
) -> list[tuple[str, int]]:
    """Of the finished items `ended` (node, index) whose Jobs still exist, those whose Jobs
    may be deleted now: recorded as succeeded in the status just written, and not among
    the items podGC keeps (`keep_below(node)`: indexes below it are kept; None keeps all)."""
    starts: dict[str, tuple[list[int], list[range]]] = {}
    found: list[tuple[str, int]] = []
    for node, index in ended:
        if node not in starts:
            entry = written_nodes.get(node)
            spans = durable_items(entry) if isinstance(entry, Mapping) else []
            starts[node] = ([s.start for s in spans], spans)
        firsts, spans = starts[node]
        at = bisect_right(firsts, index) - 1
        if at < 0 or index not in spans[at]:
            continue
        bound = keep_below(node)
        if bound is not None and index >= bound:
            found.append((node, index))
    return found
