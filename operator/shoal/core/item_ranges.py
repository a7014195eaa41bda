"""Sets of fan-out item indexes as short text: `0-3,5,7-9999` (pure).

A retry keeps the items of a fan-out that succeeded, so their indexes must survive in the
status; one entry per item would grow with the fan-out, ranges stay short when items
succeed in runs, and the text is capped so that a worst case (every other item failed)
cannot bloat the status: past the cap nothing is recorded and a retry runs every item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from shoal.api import limits
from shoal.core.lazy_re import LazyPattern  # compiled on first use: start-up

__all__ = ["MAX_RANGES_CHARS", "format_ranges", "parse_ranges", "succeeded_ranges"]

MAX_RANGES_CHARS = limits.MAX_STATUS_ITEM_RANGES_CHARS
"""Longest index-range text written to the status (about 2,000 separate runs of items)."""
_PART = LazyPattern(r"([0-9]{1,9})(?:-([0-9]{1,9}))?")


def format_ranges(indexes: Iterable[int]) -> str | None:
    """`indexes` as ascending ranges (`0-3,5`); None when the text would exceed the cap."""
    parts: list[str] = []
    size = 0
    run: list[int] = []  # [first, last] of the current run
    for index in sorted(set(indexes)):
        if run and index == run[1] + 1:
            run[1] = index
            continue
        if run:
            parts.append(_part(run))
            size += len(parts[-1]) + 1
            if size > MAX_RANGES_CHARS:
                return None
        run = [index, index]
    if run:
        parts.append(_part(run))
    text = ",".join(parts)
    return text if len(text) <= MAX_RANGES_CHARS else None


def _part(run: list[int]) -> str:
    return str(run[0]) if run[0] == run[1] else f"{run[0]}-{run[1]}"


def parse_ranges(text: str, total: int) -> list[range] | None:
    """The ranges `text` names, each within `0..total-1` and after the one before; None
    when the text is not exactly that (the status can be edited by hand)."""
    if not text or len(text) > MAX_RANGES_CHARS:
        return None
    found: list[range] = []
    after = -1
    for part in text.split(","):
        match = _PART.fullmatch(part)
        if match is None:
            return None
        low = int(match[1])
        high = int(match[2] or low)
        if low <= after or high < low or high >= total:
            return None
        found.append(range(low, high + 1))
        after = high
    return found


def succeeded_ranges(
    item_outputs: Mapping[int, Mapping[str, Any]], outputs: Mapping[str, Any]
) -> str | None:
    """The `succeededItems` of a fan-out finishing with `outputs` (`item_outputs` holds each
    succeeded item's): None when none succeeded, or when the items' values did not make it
    into `outputs` (storing them failed), since a retry could not give them back."""
    if not item_outputs or (not outputs and any(item_outputs.values())):
        return None
    return format_ranges(item_outputs)
